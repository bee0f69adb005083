"""The requesting department's side of a query: sign it, send it to the provider's oracle, verify
the receipt; encrypt parameters for an on-chain request and fetch its result. Imports ``protocol``
and ``ledger`` only: a requester runs no oracle code."""
