"""Plain-language help shown under the heading of officers' and city staff's pages."""

STRINGS: dict[str, tuple[str, str]] = {
    "help.officers": (
        "役員の役職と、それぞれの人ができること(名簿を見る、回覧を送る など)を決めます。"
        "班長には担当の班だけを任せられます。会長の交代は「引き継ぐ」で日を決めて行います。",
        "Choose officers' titles and what each may do (see the roster, send circulars …). A han leader (班長) "
        "can be limited to their own han. Hand the president's (会長) role over on a date you choose with "
        "“Hand over”.",
    ),
    "help.members_admin": (
        "町内会に入りたいという申し込みを確かめて、受け付けるか断るかを決めます。"
        "引っ越しなどで町内会を離れた人は、下の「退会の手続き」で退会にします。",
        "Check requests to join the association and accept or decline them. Use the form below "
        "(“Record that a member left”) for people who have left, for example after moving.",
    ),
    "help.circular_admin": (
        "送った回覧の一覧です。題名を押すと、どの世帯に届いたか・確認されたかが分かります。"
        "新しく送るときは「新しい回覧をつくる」を押してください。",
        "The circulars you sent. Open one to see which households it reached and who confirmed it. "
        "To send a new one, press “New circular”.",
    ),
    "help.circular_compose": (
        "題名と本文を書き、送る相手(町内会全体か、選んだ班)を選びます。"
        "送る前に見え方を確かめる画面が出ます。送った後は内容を変えられません。間違いは「訂正」で追記します。",
        "Write a title and text and choose who receives it (the whole association or chosen han). You see "
        "it as readers will before sending. Once sent it cannot be changed; add a correction instead.",
    ),
    "help.circular_status": (
        "世帯ごとに、読んだか・確認したか・紙で届けたかが分かります。"
        "まだ届いていない世帯には紙の回覧を回すか訪ねて、ここに記録してください。",
        "For every household: read, confirmed, or delivered on paper. For households not yet reached, "
        "pass the paper circular or visit them, then record it here.",
    ),
    "help.survey_builder": (
        "アンケートや行事の出欠、災害時の安否確認を作ります。種類を選び、質問と締め切りを入れて公開します。"
        "無記名にすると、誰がどう答えたかは役員にも分かりません。",
        "Create a survey, an attendance check for an event, or a safety check after a disaster. Choose the "
        "kind, add questions and a deadline, then publish. Anonymous surveys hide who answered what, even "
        "from officers.",
    ),
    "help.city": (
        "市内の地区と町内会を登録し、町内会の最初の会長を任命します。"
        "会長が決まると、その町内会の運営は会長と役員に任されます。",
        "Register the city's areas and associations, and appoint each association's first president (会長). "
        "From then on the president and officers run the association.",
    ),
    "help.dashboard": (
        "町内会ごとの加入世帯数、回覧の既読・確認の割合、アンケートの回答率をまとめた数字です。"
        "個人の名前や住所は表示されません。",
        "Totals per association: member households, how many read and confirmed circulars, survey "
        "participation. No one's name or address is shown.",
    ),
    "help.inquiry_admin": (
        "市民のこえを受け取る課とメールアドレスを管理します。課に届かなかったものはここに表示され、"
        "届くまで自動で再送します。",
        "Manage the departments that receive citizen inquiries and their mail addresses. Inquiries not yet "
        "delivered are listed here and retried automatically until they arrive.",
    ),
    "help.notice_admin": (
        "市からのお知らせを書き、届ける相手を地区や年代で選びます。公開の前に、何人に届くかが表示されます。"
        "急ぎのお知らせは一覧の先頭に出ます。",
        "Write a city notice and choose who receives it by area and age group. Before publishing you see "
        "how many residents it will reach. Urgent notices appear first in residents' lists.",
    ),
}
