"""The auditors' side: an index of the trail fed from chain events, searches over it, the replay of
grant history, verification of the whole trail (and of oracles' exports, data files, record
proofs), and the HTML verification report. Imports ``protocol`` and ``ledger`` only."""
