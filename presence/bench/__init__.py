"""presence.bench"""
