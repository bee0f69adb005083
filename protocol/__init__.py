"""govshare's wire protocol: everything both sides of a query must agree on.

The signed query (EIP-712) and its parameter commitment, the oracle's receipt and its signature,
the result-authentication message of on-chain requests, the ECIES encryption of parameters and
results, and the oracle's export file that auditors read. The oracle server (``oracle``), every
requester (``requester``, ``api``, ``cli``) and the auditors (``auditing``) import this package;
it imports only ``ledger``. ``docs/PROTOCOL.md`` specifies it for implementers in other languages.
"""
