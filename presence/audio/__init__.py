"""presence.audio"""
