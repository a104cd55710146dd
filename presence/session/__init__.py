"""presence.session"""
