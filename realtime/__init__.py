"""sttr.realtime"""
