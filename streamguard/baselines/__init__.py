"""Non-neural reference models the trained detectors are compared against."""
from .tfidf import TOKEN_PATTERN, fit_predict, make_vectorizer, tokenize

__all__ = ["TOKEN_PATTERN", "fit_predict", "make_vectorizer", "tokenize"]
