"""govshare's chain library: offline compilation, deployment and its manifest, typed contract
clients (``ledger.contracts``), canonical hashing, Merkle trees, keystores, and one JSON-RPC
provider over one HTTP client. It imports nothing else of govshare."""
