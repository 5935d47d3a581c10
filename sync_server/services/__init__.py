"""Services own transactions: load → decide (with `shared`) → persist, in one function each."""
