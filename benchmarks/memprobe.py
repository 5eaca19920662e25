"""Peak memory of this process, per stage: one probe for every scale benchmark child (and worker)."""
import threading
import time

from labelnext.io.files import proc_status


def status_kb(field):
    """A field of /proc/self/status in kB (VmHWM, RssAnon, ...); 0 when absent."""
    return int(proc_status(field) or 0)


def status_mb(field):
    """A field of /proc/self/status in MB, rounded (``status_mb('VmHWM')``: this process's peak RSS)."""
    return round(status_kb(field) / 1024)


class PeakMemory:
    """Peak RSS (VmHWM, kernel-exact) and sampled peak RssAnon of this process, per stage."""

    def __init__(self, interval=0.02):
        self.interval = interval
        self._anon = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.is_set():
            self._anon = max(self._anon, status_kb("RssAnon"))
            time.sleep(self.interval)

    @staticmethod
    def reset_hwm():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        except OSError:
            pass

    def reset(self):
        self.reset_hwm()
        self._anon = status_kb("RssAnon")

    def read(self):
        self._anon = max(self._anon, status_kb("RssAnon"))
        return {"peak_rss_mb": status_mb("VmHWM"), "peak_anon_mb": round(self._anon / 1024)}

    def close(self):
        self._stop.set()


def stage_recorder(rec, mem):
    """``stage(name, fn)``: run ``fn``, record its seconds and peak memory in ``rec['stages'][name]``."""
    def stage(name, fn):
        mem.reset()
        t = time.perf_counter()
        out = fn()
        rec["stages"][name] = dict(seconds=round(time.perf_counter() - t, 3), **mem.read())
        return out

    return stage


def worker_memory_mb():
    """A Dask worker's peak RSS (VmHWM, mapped shard pages included) and its anonymous memory now
    (``client.run(worker_memory_mb)``)."""
    return {"peak_rss": status_mb("VmHWM"), "anon_now": status_mb("RssAnon")}
