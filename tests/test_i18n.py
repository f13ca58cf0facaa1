"""Japanese and English are complete, and no UI text is written directly in a component."""

import ast
import re
from pathlib import Path

import pytest

from chiiki.i18n import STRINGS, tr

ROOT = Path(__file__).resolve().parent.parent / "chiiki"
UI_FILES = sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("components/*.py")])
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
# Calls whose first string argument is a message key.
KEY_CALLS = {"t", "tf", "tr", "heading", "primary_button", "secondary_button", "link_button", "text_field",
             "text_area", "checkbox_field", "select_field", "register_nav", "template"}


def test_every_string_has_japanese_and_english():
    missing = [k for k, pair in STRINGS.items()
               if not isinstance(pair, tuple) or len(pair) != 2 or not pair[0].strip() or not pair[1].strip()]
    assert missing == []


def test_english_strings_are_not_left_in_japanese():
    # Proper nouns and examples may keep Japanese; whole sentences may not.
    untranslated = [k for k, (ja, en) in STRINGS.items() if len(CJK.findall(en)) > len(en) / 2 and en == ja]
    assert untranslated == []


def test_placeholders_match_between_languages():
    bad = [k for k, (ja, en) in STRINGS.items()
           if set(re.findall(r"\{(\w+)\}", ja)) != set(re.findall(r"\{(\w+)\}", en))]
    assert bad == []


def _key_args(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in KEY_CALLS:
                args = list(node.args)
                if name == "tr" and args:
                    args = args[1:]
                for arg in args[:1]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value \
                            and " " not in arg.value and not arg.value.startswith("/"):
                        yield node.lineno, arg.value
                for kw in node.keywords:
                    if kw.arg in ("title_key", "help_key", "placeholder_key") and isinstance(kw.value, ast.Constant):
                        yield node.lineno, kw.value.value


@pytest.mark.parametrize("path", [*UI_FILES, *ROOT.glob("state.py")], ids=lambda p: p.name)
def test_every_key_used_in_the_ui_exists(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = [(line, key) for line, key in _key_args(tree) if key is not None and key not in STRINGS]
    assert missing == [], f"{path.name}: keys missing from chiiki/i18n: {missing}"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_japanese_text_is_written_directly_in_a_component(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstring_nodes(tree)
    found = [(n.lineno, n.value) for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
             and CJK.search(n.value)]
    assert found == [], f"{path.name}: move these into chiiki/i18n: {found}"


def test_tr_formats_and_falls_back_visibly():
    assert tr("en", "error.too_long", max=5) == "Use at most 5 characters"
    assert tr("ja", "error.too_long", max=5) == "5文字以内で入力してください"
    assert tr("ja", "no.such.key") == "no.such.key"


TEXT_COMPONENTS = {"text", "heading", "button", "link", "callout", "badge", "label", "option", "span", "p", "th",
                   "td", "h1", "h2", "h3", "legend", "tooltip", "title", "summary"}


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_english_text_is_written_directly_in_a_component(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in TEXT_COMPONENTS:
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and re.search(r"[A-Za-z]{2,}", arg.value):
                    found.append((node.lineno, arg.value))
            for kw in node.keywords:
                if kw.arg in ("placeholder", "aria_label", "title", "alt") and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str) and re.search(r"[A-Za-z]{2,}", kw.value.value):
                    found.append((node.lineno, kw.value.value))
    assert found == [], f"{path.name}: move these into chiiki/i18n: {found}"


# English strings that keep Japanese on purpose: the language switch names Japanese in Japanese, and the
# kana field's example shows what to type.
JAPANESE_ON_PURPOSE = {"shell.language", "shell.language_label", "field.kana_help"}
_GLOSS = re.compile(r"\s?\([^()]*\)")  # "president (会長)": the Japanese word beside the English one


def test_english_strings_name_roles_and_places_in_english():
    """An English reader is told "president", "han leader", "association" …; a Japanese word may follow in
    brackets, "president (会長)", to match a paper document, but never stands in for the English one."""
    left = {k: en for k, (ja, en) in STRINGS.items()
            if k not in JAPANESE_ON_PURPOSE and CJK.search(_GLOSS.sub("", en))}
    assert left == {}


def test_help_texts_in_english_say_president_and_han_leader():
    roles = re.compile(r"会長|班長|役員|町内会|世帯|回覧")
    assert {k: en for k, (ja, en) in STRINGS.items() if k.startswith("help.") and roles.search(_GLOSS.sub("", en))} \
        == {}
    assert "president (会長)" in tr("en", "help.city") and "han leader (班長)" in tr("en", "help.officers")
