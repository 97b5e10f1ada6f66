"""Order-preserving de-duplication of event ids."""


def unique_in_order(items):
    """Return the items without repeats, each kept at its first position."""
    seen = []
    out = []
    for item in items:
        if item not in seen:
            seen.append(item)
            out.append(item)
    return out
