"""Typed clients of the consortium contracts, one module per contract, on one shared base
(``ledger.contracts.base.ContractClient``); callers never see ABI dictionaries."""
