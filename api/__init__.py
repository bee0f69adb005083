"""govshare's API service: a department's (or an auditor's) HTTP front on the consortium ledger.

``api.app.create_app`` assembles it; ``govshare api serve --config FILE`` runs it.
"""
