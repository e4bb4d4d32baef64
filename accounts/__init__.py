"""Participants of the carbon market, their people (memberships and roles), API tokens and permissions."""
