"""procstat: what /proc says about one process: CPU time, memory peaks, system-call counts, descriptors.

cpu_seconds(pid): user+sys from /proc/PID/stat (fields 14 and 15, in clock ticks).
main_thread_cpu_seconds(pid): user+sys of the main thread alone (/proc/PID/task/PID/stat): for hekate, its event
loop; cpu_seconds minus it is every other thread's, those that have ended included (the kernel adds a thread's times
to the process's when it exits): hekate's disk pool, whose threads exit after a second without work.
status(pid): the kB fields of /proc/PID/status (VmHWM, VmRSS, RssAnon, ...), as bytes.
io(pid): /proc/PID/io (syscr, syscw, rchar, wchar, read_bytes, ...): syscr+syscw count read-like and write-like
system calls only (read/readv/recv*/pread and write/writev/send*/sendfile...), not epoll_wait, mmap or madvise.
Sampler: a thread that samples VmRSS and RssAnon every few ms and keeps the peaks (VmHWM is the kernel's own peak of
VmRSS; RssAnon has no kernel peak, hence sampling)."""
import os
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK   # utime, stime (fields 14, 15 of the whole line)


def main_thread_cpu_seconds(pid):
    with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            v = v.split()
            if len(v) == 2 and v[1] == "kB":
                out[k] = int(v[0]) * 1024
    return out


def io(pid):
    out = {}
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = int(v)
    return out


def num_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Sampler:
    def __init__(self, pid, interval=0.01):
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.peak_anon = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                st = status(self.pid)
            except (OSError, ValueError):
                return
            self.peak_rss = max(self.peak_rss, st.get("VmRSS", 0))
            self.peak_anon = max(self.peak_anon, st.get("RssAnon", 0))
            self.samples += 1
            time.sleep(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=2)
        return self
