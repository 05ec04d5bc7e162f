"""Tutor logic free of Slack and of model SDKs: usage arithmetic, prices, budgets.

Plain modules over small records, with Redis stores where something must be kept; Slack
only renders what they compute (see DESIGN.md, "Tutor logic is pure").
"""
