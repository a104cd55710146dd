"""presence.lipsync"""
