"""presence.client"""
