"""Course orders and their payment (Alipay, or the offline simulator)."""
