"""Memory figures of the running process, shared by the benchmarks (Linux /proc)."""


def memory_status() -> dict:
    """Current VmHWM / VmRSS / RssAnon / RssFile of this process in MB."""
    fields = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields
