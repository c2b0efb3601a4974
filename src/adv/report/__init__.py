"""Folder scans (`adv scan`) and their CSV / JSON / self-contained HTML reports."""
