"""Perception vs. reality and the alignment index.

- `definitions`: the rules and their defaults (plain data: bot.platform.config reads it);
- `perception`: what a closed pulse survey run says about how the teams feel;
- `gap`: a reality level per dimension from the metrics, beside each role's perception;
- `index`: the alignment index and its stage, component by component;
- `report`: both over a period, for every surface; `commands`: `/align gap|index`.
"""
