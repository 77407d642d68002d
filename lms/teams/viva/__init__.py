"""Viva Learning: Manabi as a learning provider in each municipality's tenant (see docs/viva-learning.md)."""
