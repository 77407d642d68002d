"""Manabi as a Teams personal tab: single sign-on, the learner pages Teams may frame."""
