"""Flash sales: goods with a stock and a sale window, and the orders they become."""
