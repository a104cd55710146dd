"""presence.engines"""
