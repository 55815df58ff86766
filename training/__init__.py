"""sttr.training"""
