"""presence.server"""
