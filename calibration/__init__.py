"""sttr.calibration"""
