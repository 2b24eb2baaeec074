"""Item pipelines, one per module, in this order (see ``crawler/settings.py``):

validate → normalise → dedup → store → handoff
"""
