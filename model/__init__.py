"""sttr.model"""
