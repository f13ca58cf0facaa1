"""Chiiki: regional information sharing for a city and its neighbourhood associations."""
