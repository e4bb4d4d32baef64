"""The registry ledger and the market: assets, accounts, the journal, serial blocks, holds, audit."""
