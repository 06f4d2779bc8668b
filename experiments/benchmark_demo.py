"""Times one face's sketch through the demo's API, as a user's call sees it.

  python experiments/benchmark_demo.py [--url=http://127.0.0.1:7860/]
      [--photo=FILE] [--repeats=20] [--warmup=3] [-- DEMO FLAGS...]

Without --url it starts `python -m f2s.demo` on a free port on 127.0.0.1
(passing on the flags after `--`, e.g. `-- --workdir=RUN`) and stops it at
the end. The photo (default: skimage's astronaut, one face, 512x512 PNG) is
sent to `/sketch` with gradio_client after --warmup calls; printed: the
median, mean, min and max of the --repeats calls' wall-clock time (upload,
queue, read, detect, align, sketch, write, download), and the CPU. With a
server it started, also the CPU time the server and this client spent per
call: on a machine busy with other work, wall-clock time counts the wait
for a core, and their sum bounds what an idle machine would take.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmark import cpu_name  # noqa: E402  (after the path set-up)
from f2s import demo  # noqa: E402

STARTUP_S = 300


def cpu_seconds(pid: int) -> float:
  """User + system CPU time of process `pid` (all its threads)."""
  with open(f'/proc/{pid}/stat') as f:
    fields = f.read().rsplit(')', 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def time_calls(url: str, photo: str, warmup: int, repeats: int,
               download_dir: str, server_pid: int | None
               ) -> tuple[list[float], float | None, float]:
  """(seconds per `/sketch` call after `warmup` untimed ones, the server's
  CPU seconds per call or None, this process's CPU seconds per call)."""
  from gradio_client import Client, handle_file
  # Certificates are checked for https only: for http, gradio_client's
  # default (ssl_verify=True) only loads the CA bundle again for each of a
  # call's requests, 120 ms of CPU of a call's 135 (measured on this demo).
  client = Client(url, verbose=False, download_files=download_dir,
                  analytics_enabled=False,
                  ssl_verify=url.startswith('https://'))
  times = []
  for k in range(warmup + repeats):
    if k == warmup:
      server_cpu = server_pid and cpu_seconds(server_pid)
      own_cpu = time.process_time()
    start = time.perf_counter()
    client.predict(handle_file(photo), api_name='/sketch')
    if k >= warmup:
      times.append(time.perf_counter() - start)
  if server_pid:
    server_cpu = (cpu_seconds(server_pid) - server_cpu) / repeats
  return times, server_cpu, (time.process_time() - own_cpu) / repeats


def main() -> None:
  argv = sys.argv[1:]
  split = argv.index('--') if '--' in argv else len(argv)
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--url', help='a running demo (default: start one)')
  parser.add_argument('--photo', help='image file (default: the astronaut)')
  parser.add_argument('--repeats', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=3)
  args = parser.parse_args(argv[:split])
  demo_flags = argv[split + 1:]
  with tempfile.TemporaryDirectory() as tmp:
    photo = args.photo
    if photo is None:
      import skimage.data
      photo = os.path.join(tmp, 'astronaut.png')
      Image.fromarray(skimage.data.astronaut()).save(photo)
    server, url = None, args.url
    if url is None:
      server, url = demo.start_subprocess(demo_flags,
                                          stdout=subprocess.DEVNULL)
    try:
      if server is not None:
        demo.wait_until_serving(url, server, STARTUP_S)
      times, server_cpu, own_cpu = time_calls(
          url, photo, args.warmup, args.repeats, tmp,
          server and server.pid)
    except RuntimeError as e:  # the demo did not start
      sys.exit(f'error: {e}')
    finally:
      if server is not None:
        server.terminate()
        server.wait(timeout=60)
  ms = [1000 * t for t in times]
  print(f'{os.path.basename(photo)} via {url} /sketch, {len(ms)} calls after '
        f'{args.warmup} warm-up: median {statistics.median(ms):.0f} ms, '
        f'mean {statistics.mean(ms):.0f}, min {min(ms):.0f}, '
        f'max {max(ms):.0f}')
  if server_cpu is not None:
    print(f'CPU time per call: server {1000 * server_cpu:.0f} ms, client '
          f'{1000 * own_cpu:.0f} ms')
  print(f'CPU: {cpu_name()}, {os.cpu_count()} cores')


if __name__ == '__main__':
  main()
