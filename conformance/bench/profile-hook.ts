// Preloaded into the cluster's processes for the benchmark's profile phase
// (NODE_OPTIONS=--import=<this file>, MPCHSM_BENCH_PROFILE_DIR=<dir>): samples the CPU with
// V8's profiler and writes PID.SEQ.cpuprofile on SIGUSR2 (then starts a new segment) and at
// exit. Node 20 refuses --cpu-prof in NODE_OPTIONS, and the processes are started by
// `mpchsm up`, so this is how a profile of exactly one benchmark segment is taken.
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.env.MPCHSM_BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));
  let seq = 0;
  // The in-process inspector answers synchronously, which the exit handler relies on.
  const dump = () => {
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      const file = path.join(dir, `${process.pid}.${seq++}.cpuprofile`);
      writeFileSync(`${file}.tmp`, JSON.stringify(result.profile));
      renameSync(`${file}.tmp`, file);
    });
  };
  void post('Profiler.enable')
    .then(() => post('Profiler.setSamplingInterval', { interval: 1000 }))
    .then(() => post('Profiler.start'))
    // Tells the benchmark this process will answer SIGUSR2 (whose default action is to exit).
    .then(() => writeFileSync(path.join(dir, `${process.pid}.ready`), ''));
  process.on('SIGUSR2', () => {
    dump();
    session.post('Profiler.start');
  });
  process.on('exit', dump);
}
