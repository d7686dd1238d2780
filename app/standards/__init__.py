"""National standards of digital city management (数字城管): the 部件/事件 code tables."""
