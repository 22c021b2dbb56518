#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fleet harness: N real cmk-agent processes against one CMK (issue 16 s3).

Every agent is the real binary with --no-kernel (the host never loads
dm-cmk): its own config, state_dir and audit log, the aws provider, and
moto_server (IAM authorisation on) behind kmsproxy.py, which enforces a KMS
quota (ThrottlingException beyond it) and records every request.  All on
127.0.0.1.

Scenarios (Documentation/fleet.rst, "Measured at fleet scale"):

  abc   one fleet, one timeline: (a) synchronized start with the quota at
        2x the fleet's demand; (b) from 2.5 intervals on, the quota at 0.5x
        demand; (c) a real revocation (an IAM Deny on kms:Decrypt) during
        (b).  Safety, asserted: no agent wipes before the revocation; every
        agent wipes after it within the documented bound.
  hint  (d) checks every 300 s and an SQS queue per agent fed by one SNS
        topic: a Deny, then an EventBridge-shaped message on the topic.
        Asserted: every agent wipes within the bound.
  poll  (d) the same fleet with 30 s checks and no hint, for comparison.

Timings are measured and reported, never asserted.  Output: TAP on stdout
("ok N fleet_..."), and in --out: report.txt, per-second CSV series and,
with gnuplot, PNG charts.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import boto3
import botocore.config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kmsproxy  # noqa: E402

REGION = 'us-east-1'
SUBS_PER_TOPIC = 100
ACCOUNT = '123456789012'
SETUP = ('AKIASETUP0000000000', 'setup')
BOTO = botocore.config.Config(retries={'max_attempts': 10, 'mode': 'standard'},
                              max_pool_connections=50)

tap_n = 0
tap_failed = 0


def ok(name, cond, comment=''):
    global tap_n, tap_failed
    tap_n += 1
    if not cond:
        tap_failed += 1
    print('%sok %d %s%s' % ('' if cond else 'not ', tap_n, name,
                            ' # ' + comment if comment else ''), flush=True)


def note(msg):
    print('# ' + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(('127.0.0.1', port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def pct(xs, p):
    if not xs:
        return float('nan')
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class Moto:
    def __init__(self, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, 'moto.out'), 'w')
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT='6')
        self.p = subprocess.Popen(['moto_server', '-H', '127.0.0.1', '-p', str(self.port)],
                                  stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        if not wait_port(self.port):
            raise RuntimeError('moto_server does not listen')
        self.url = 'http://127.0.0.1:%d' % self.port

    def client(self, svc, ak, sk, url=None):
        return boto3.client(svc, region_name=REGION, endpoint_url=url or self.url,
                            aws_access_key_id=ak, aws_secret_access_key=sk, config=BOTO)

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.p.wait()


AGENT_POLICY = {'Version': '2012-10-17', 'Statement': [{
    'Effect': 'Allow', 'Resource': '*',
    'Action': ['kms:Decrypt', 'kms:Encrypt', 'kms:DescribeKey', 'sqs:ReceiveMessage',
               'sqs:DeleteMessage', 'sqs:DeleteMessageBatch']}]}
DENY = {'Version': '2012-10-17', 'Statement': [{
    'Effect': 'Deny', 'Action': 'kms:Decrypt', 'Resource': '*'}]}


def setup_users(moto):
    iam = moto.client('iam', *SETUP)
    allow_all = {'Version': '2012-10-17',
                 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}
    iam.create_user(UserName='admin')
    iam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument=json.dumps(allow_all))
    a = iam.create_access_key(UserName='admin')['AccessKey']
    iam.create_user(UserName='agent')
    g = iam.create_access_key(UserName='agent')['AccessKey']
    iam.put_user_policy(UserName='agent', PolicyName='kms', PolicyDocument=json.dumps(AGENT_POLICY))
    return ((a['AccessKeyId'], a['SecretAccessKey']), (g['AccessKeyId'], g['SecretAccessKey']))


class PortMap(threading.Thread):
    """Which agent each client port of the proxy belongs to.

    Every 2 s: the sockets connected to the proxy (/proc/net/tcp: local
    port, inode) and the agents' open sockets (/proc/<pid>/fd).  An agent
    keeps its connection across checks, so a scan every few seconds sees
    nearly every port before it is closed.
    """

    def __init__(self, proxy_port):
        super().__init__(daemon=True)
        self.proxy_port = proxy_port
        self.agents = {}            # pid -> (fleet name, index)
        self.ports = {}             # client port -> (fleet name, index)
        self.lock = threading.Lock()
        self.done = threading.Event()

    def add(self, pid, who):
        with self.lock:
            self.agents[pid] = who

    def scan(self):
        inodes = {}
        try:
            with open('/proc/net/tcp') as f:
                next(f)
                for line in f:
                    c = line.split()
                    if int(c[2].split(':')[1], 16) == self.proxy_port:
                        inodes['socket:[%s]' % c[9]] = int(c[1].split(':')[1], 16)
        except OSError:
            return
        with self.lock:
            agents = list(self.agents.items())
        for pid, who in agents:
            d = '/proc/%d/fd' % pid
            try:
                fds = os.listdir(d)
            except OSError:
                continue
            for fd in fds:
                try:
                    port = inodes.get(os.readlink('%s/%s' % (d, fd)))
                except OSError:
                    continue
                if port:
                    self.ports[port] = who

    def run(self):
        while not self.done.wait(2.0):
            self.scan()

    def who(self, port):
        return self.ports.get(port)


class Fleet:
    """N agents, each in tmp/<name>/<i>: agent.conf, state/, audit.log."""

    def __init__(self, h, name, n, interval_s, grace_s, hint_urls=None, ports=None):
        self.h, self.name, self.n = h, name, n
        # ports: each agent's own proxy port (Proxy.listen), else the shared one
        self.urls = ['http://127.0.0.1:%d' % p for p in ports] if ports else [h.proxy_url] * n
        for i, p in enumerate(ports or []):
            h.port_owner[p] = (name, i)
        self.dir = os.path.join(h.tmp, name)
        self.procs = []
        h.fleets.append(self)
        self.interval_s, self.grace_s = interval_s, grace_s
        os.makedirs(self.dir)
        for i in range(n):
            d = os.path.join(self.dir, str(i))
            os.makedirs(d)
            conf = ['[agent]', 'kek_envelope = %s' % h.kek,
                    'check_interval_s = %d' % interval_s,
                    'lease_ms = 600000', 'check_timeout_ms = 10000',
                    'grace_s = %d' % grace_s, 'boot_deadline_s = 600',
                    'throttle_grace_s = %d' % h.args.throttle_grace,
                    'hint_spread_ms = %d' % h.args.hint_spread,
                    'audit_log = %s/audit.log' % d, 'syslog = no',
                    'state_dir = %s/state' % d]
            if hint_urls:
                conf += ['hint_sqs_queue_url = %s' % hint_urls[i], 'hint_sqs_region = %s' % REGION]
            with open(os.path.join(d, 'agent.conf'), 'w') as f:
                f.write('\n'.join(conf) + '\n')

    def start(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.h.agent[0],
                   AWS_SECRET_ACCESS_KEY=self.h.agent[1], AWS_REGION=REGION,
                   AWS_ENDPOINT_URL_KMS=self.h.proxy_url, AWS_EC2_METADATA_DISABLED='true')
        for k in list(env):
            if k.lower().endswith('_proxy'):
                del env[k]
        self.t0 = time.time()
        for i in range(self.n):
            d = os.path.join(self.dir, str(i))
            err = open(os.path.join(d, 'stderr'), 'w')
            env['AWS_ENDPOINT_URL_KMS'] = self.urls[i]
            self.procs.append(subprocess.Popen(
                [self.h.agentbin, '--no-kernel', '--config', os.path.join(d, 'agent.conf')],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=dict(env),
                start_new_session=True))
            err.close()
            self.h.portmap.add(self.procs[-1].pid, (self.name, i))
        self.t_started = time.time()

    def wipe_bound(self):
        """The agent's own bound on time-to-wipe under a throttle (--print-load), s."""
        out = subprocess.run([self.h.agentbin, '--print-load', '--config',
                              os.path.join(self.dir, '0', 'agent.conf')],
                             capture_output=True, text=True, check=True).stdout
        return int(re.search(r'wipes the keys within (\d+) s', out).group(1))

    def states(self):
        out = []
        for i in range(self.n):
            try:
                with open(os.path.join(self.dir, str(i), 'state', 'agent.json')) as f:
                    out.append(json.load(f)['state'])
            except (OSError, ValueError):
                out.append('none')
        return out

    def wait_active(self, secs):
        end = time.time() + secs
        while time.time() < end:
            s = self.states()
            if all(x == 'active' for x in s):
                return True
            time.sleep(0.5)
        return False

    def memory(self):
        """Per-agent RSS, PSS (shared pages split) and locked memory, kB."""
        rss, pss, lck = [], [], []
        for p in self.procs:
            try:
                with open('/proc/%d/status' % p.pid) as f:
                    st = dict(line.split(':', 1) for line in f if ':' in line)
                with open('/proc/%d/smaps_rollup' % p.pid) as f:
                    sm = dict(line.split(':', 1) for line in f if ':' in line)
                rss.append(int(st['VmRSS'].split()[0]))
                lck.append(int(st['VmLck'].split()[0]))
                pss.append(int(sm['Pss'].split()[0]))
            except (OSError, KeyError, ValueError):
                pass
        return rss, pss, lck

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.exits = [p.returncode for p in self.procs]

    def wipes(self):
        """Per agent: the first revoke line's (time, error_class, reason), or None."""
        out = []
        for i in range(self.n):
            first = None
            try:
                with open(os.path.join(self.dir, str(i), 'audit.log')) as f:
                    for line in f:
                        ev = json.loads(line)
                        if ev['event'] == 'revoke':
                            first = (ts(ev['time']), ev.get('error_class'), ev.get('reason'))
                            break
            except OSError:
                pass
            out.append(first)
        return out

    def hint_sent(self):
        """Per agent: SQS's SentTimestamp of the last hint before its first revoke."""
        out = []
        for i in range(self.n):
            sent = None
            try:
                with open(os.path.join(self.dir, str(i), 'audit.log')) as f:
                    for line in f:
                        ev = json.loads(line)
                        if ev['event'] == 'revoke':
                            break
                        m = re.search(r'sent (-?\d+) ms ago', ev.get('message', ''))
                        if ev['event'] == 'hint' and m:
                            sent = ts(ev['time']) - int(m.group(1)) / 1000.0
            except OSError:
                pass
            out.append(sent)
        return out

    def hint_lines(self):
        n = 0
        for i in range(self.n):
            try:
                with open(os.path.join(self.dir, str(i), 'audit.log')) as f:
                    n += sum('"event":"hint"' in line for line in f)
            except OSError:
                pass
        return n


def ts(s):
    return datetime.datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp()


class Harness:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='cmk-fleet.')
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.agentbin = args.agent
        self.cmkctl = args.cmkctl
        self.moto = Moto(self.tmp)
        self.admin, self.agent = setup_users(self.moto)
        self.kms = self.moto.client('kms', *self.admin)
        self.iam = self.moto.client('iam', *self.admin)
        self.sqs = self.moto.client('sqs', *self.admin)
        self.sns = self.moto.client('sns', *self.admin)
        self.key = self.kms.create_key(Description='fleet CMK')['KeyMetadata']['Arn']
        self.kek = os.path.join(self.tmp, 'kek.json')
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.agent[0], AWS_SECRET_ACCESS_KEY=self.agent[1],
                   AWS_REGION=REGION, AWS_ENDPOINT_URL_KMS=self.moto.url,
                   AWS_EC2_METADATA_DISABLED='true')
        subprocess.run([self.cmkctl, 'kek', 'create', '--provider', 'aws', '--key-id', self.key,
                        '--context', 'fleet=1', '--out', self.kek], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        self.proxy = kmsproxy.Proxy(self.moto.port).start()
        self.proxy_url = 'http://127.0.0.1:%d' % self.proxy.port
        self.portmap = PortMap(self.proxy.port)
        self.portmap.start()
        self.port_owner = {}        # an agent's own proxy port -> (fleet name, index)
        self.report = []
        self.series = {}
        self.fleets = []

    def close(self):
        self.portmap.done.set()
        for f in self.fleets:
            f.stop()
        self.proxy.stop()
        self.moto.stop()
        if self.args.keep:
            note('kept %s' % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def deny(self, on):
        if on:
            self.iam.put_user_policy(UserName='agent', PolicyName='deny', PolicyDocument=json.dumps(DENY))
        else:
            self.iam.delete_user_policy(UserName='agent', PolicyName='deny')

    def window(self, t0, t1, kind='kms'):
        """Requests of @kind in [t0, t1): (all, throttled)."""
        rs = [r for r in self.proxy.records if t0 <= r[0] < t1 and r[1] == kind]
        return len(rs), sum(1 for r in rs if r[4])

    def by_agent(self, fleet, t0, t1):
        """KMS requests of @fleet's agents in [t0, t1): {index: [all, throttled]}, unattributed."""
        out, lost = {}, 0
        for r in self.proxy.records:
            if not (t0 <= r[0] < t1 and r[1] == 'kms'):
                continue
            who = self.who(r)
            if not who or who[0] != fleet.name:
                lost += 1
                continue
            c = out.setdefault(who[1], [0, 0])
            c[0] += 1
            c[1] += r[4]
        return out, lost

    def who(self, r):
        """The agent of record @r: by its own proxy port, else by client port."""
        return self.port_owner.get(r[7]) or self.portmap.who(r[5])

    def first_kms(self, fleet, t):
        """Per agent of @fleet: the record of its first KMS request to arrive
        at the proxy from @t on, or None.  Needs the agents' own ports."""
        out = [None] * fleet.n
        for r in list(self.proxy.records):
            who = self.port_owner.get(r[7])
            if r[1] != 'kms' or r[6] < t or not who or who[0] != fleet.name:
                continue
            if out[who[1]] is None or r[6] < out[who[1]][6]:
                out[who[1]] = r
        return out

    def per_second(self, name, t0, t1, marks, quota=None):
        """Per-second series from t0; @quota(second) the quota then, or None."""
        rows = []
        for s in range(int(t1 - t0) + 1):
            a, th = self.window(t0 + s, t0 + s + 1)
            sq, _ = self.window(t0 + s, t0 + s + 1, 'sqs')
            rows.append((s, a, th, a - th, sq, quota(s) if quota else 0))
        path = os.path.join(self.out, '%s.csv' % name)
        with open(path, 'w') as f:
            f.write('# second kms_requests throttled answered sqs_requests quota(0: none)\n')
            for r in rows:
                f.write('%d %d %d %d %d %.1f\n' % r)
        self.series[name] = (path, marks)
        return rows

    def say(self, line):
        self.report.append(line)
        note(line)

    def memory_note(self, fleet):
        rss, pss, lck = fleet.memory()
        if rss:
            self.say('%s: per agent RSS median %d kB, PSS median %d kB (max %d), locked median %d kB (max %d); '
                     'all %d agents: PSS %.0f MiB'
                     % (fleet.name, statistics.median(rss), statistics.median(pss), max(pss),
                        statistics.median(lck), max(lck), len(rss), sum(pss) / 1024.0))

    # ---- (a) (b) (c) ---------------------------------------------------------------

    def scenario_abc(self):
        a = self.args
        n, iv = a.agents, a.interval
        demand = n / iv
        fleet = Fleet(self, 'abc', n, iv, a.grace)
        self.proxy.set_rate(2 * demand)
        self.say('== (a)(b)(c): %d agents, check_interval_s %d, grace_s %d, demand %.1f KMS req/s'
                 % (n, iv, a.grace, demand))
        fleet.start()
        t0 = fleet.t0
        self.say('(a) start: %d agents started in %.1f s; quota %.1f req/s (2x demand)'
                 % (n, fleet.t_started - t0, 2 * demand))
        # Every agent unseals through a quota of 2x the demand, with
        # backoff.  How long that takes is reported, never asserted: a
        # loaded CI machine starts 200 processes slowly.  (b) begins a_len
        # after the start or once all are active, whichever is later.
        booted = fleet.wait_active(max(a.a_len, a.a_wait) - (time.time() - t0))
        ta = time.time()
        ok('fleet_a_all_agents_unseal', booted, '%d/%d active after %.0f s' % (
            fleet.states().count('active'), n, ta - t0))
        self.say('(a) all agents active %.1f s after the start' % (ta - t0))
        tb = max(t0 + a.a_len, ta)
        time.sleep(max(0, tb - time.time()))
        self.memory_note(fleet)
        self.proxy.set_rate(0.5 * demand)
        self.say('(b) t=%.0f s: quota %.1f req/s (0.5x demand) until the wipes after (c), at least %d s'
                 % (tb - t0, 0.5 * demand, max(a.b_len, a.revoke_after)))
        tr = tb + a.revoke_after
        time.sleep(max(0, tr - time.time()))
        # From before the call: moto applies the Deny before it answers,
        # so an agent's check can meet it (and wipe) before the call returns.
        tr = time.time()
        self.deny(True)
        self.say('(c) t=%.0f s: Deny on kms:Decrypt (a real revocation, %.2f s in moto), quota still 0.5x'
                 % (tr - t0, time.time() - tr))
        # The agent's own bound (fleet.rst, "A revocation under a
        # throttle"): the throttle window + check_timeout_ms + grace_s +
        # throttle_grace_s, + 30 s for a loaded machine.
        bound = a.c_bound if a.c_bound else fleet.wipe_bound() + 30
        end = tr + bound
        while time.time() < end:
            if all(w is not None for w in fleet.wipes()):
                break
            time.sleep(1)
        te = max(time.time(), tb + a.b_len)
        time.sleep(max(0, te - time.time()))
        fleet.stop()
        self.deny(False)
        self.proxy.set_rate(None)
        w = fleet.wipes()
        early = [x for x in w if x and x[0] < tr]
        late = [x[0] - tr for x in w if x and x[0] >= tr]
        missing = sum(1 for x in w if x is None)
        rows = self.per_second('abc', t0, time.time(), {'b': tb - t0, 'c': tr - t0},
                               lambda s: 2 * demand if s < tb - t0 else 0.5 * demand)
        # (a): the load in the third interval, after the synchronized start
        a3, _ = self.window(t0 + 2 * iv, t0 + min(a.a_len, 3 * iv))
        span = max(1, min(a.a_len, 3 * iv) - 2 * iv)
        peak = max(r[1] for r in rows[:a.a_len]) if rows else 0
        self.say('(a) KMS req/s: peak %d in one second (the unseals), %.1f/s in the third interval (demand %.1f, quota %.1f)'
                 % (peak, a3 / span, demand, 2 * demand))
        # (b): offered load and throttles while the quota is 0.5x, before the revocation
        bn, bt = self.window(tb, tr)
        bl = max(1e-9, tr - tb)
        self.say('(b) offered %.1f KMS req/s = %.2fx the quota (goal <= 1.2x), %d of %d throttled (%.0f%%)'
                 % (bn / bl, bn / bl / (0.5 * demand), bt, bn, 100.0 * bt / max(1, bn)))
        self.b_accounting(fleet, tb, tr, iv, demand)
        cls = {}
        for x in w:
            if x and x[0] >= tr:
                cls[x[1]] = cls.get(x[1], 0) + 1
        self.say('(c) wipes after the revocation: %d of %d (%s); time-to-wipe p50 %.1f s, p99 %.1f s, max %.1f s; bound %d s'
                 % (len(late), n, ', '.join('%s %d' % kv for kv in sorted(cls.items())),
                    pct(late, 50), pct(late, 99), max(late) if late else float('nan'), bound))
        self.c_accounting(fleet, w, tr, time.time())
        ok('fleet_ab_no_self_inflicted_wipe', not early,
           '%d agents wiped before the revocation (%s)' % (len(early), ', '.join(sorted({'%s/%s' % (x[1], x[2]) for x in early}))))
        ok('fleet_c_every_agent_wipes_after_revocation', missing == 0 and all(d <= bound for d in late),
           '%d never wiped, %d wiped, bound %d s' % (missing, len(w) - missing, bound))
        return fleet

    def b_accounting(self, fleet, tb, tr, iv, demand):
        """What makes up (b)'s load: the first two intervals after the quota
        fell (every agent still at its full rate) against the rest, and how
        evenly the agents share it."""
        q = 0.5 * demand
        for name, t0, t1 in (('first 2 intervals', tb, min(tr, tb + 2 * iv)),
                             ('after them', min(tr, tb + 2 * iv), tr)):
            n, th = self.window(t0, t1)
            if t1 > t0:
                self.say('(b) %s: %.1f KMS req/s = %.2fx the quota, %.0f%% throttled'
                         % (name, n / (t1 - t0), n / (t1 - t0) / q, 100.0 * th / max(1, n)))
        t0 = min(tr, tb + 2 * iv)
        per, lost = self.by_agent(fleet, t0, tr)
        if not per or tr <= t0:
            return
        share = q / fleet.n * (tr - t0)         # each agent's fair share of the quota
        counts = sorted((c[0] for c in per.values()), reverse=True)
        top = counts[:max(1, len(counts) // 10)]
        self.say('(b) after the first 2 intervals, per agent (%d agents seen, %d requests unattributed): '
                 'requests p50 %d, p90 %d, max %d (fair share of the quota %.1f); the busiest 10%% asked %.0f%% of them; '
                 'throttled per agent p50 %d, max %d'
                 % (len(per), lost, pct(counts, 50), pct(counts, 90), counts[0], share,
                    100.0 * sum(top) / max(1, sum(counts)),
                    pct([c[1] for c in per.values()], 50), max(c[1] for c in per.values())))

    def c_accounting(self, fleet, w, tr, t1):
        """After the revocation, until the last wipe: how much of the quota
        went to the agents still waiting for their answer.  Every answer
        that passed the quota then is a no (the Deny is in place), and an
        agent's first no wipes it: answers beyond one per wiped agent went
        to agents already wiped, which check on for a key that may come
        back."""
        last = max([x[0] for x in w if x and x[0] >= tr] or [tr])
        n, th = self.window(tr, last + 0.001)
        first = sum(1 for x in w if x and x[0] >= tr and x[1] == 'definitive')
        self.say('(c) until the last wipe (%.0f s): %d KMS requests, %d throttled, %d answered: %d the first no '
                 'of an agent (its wipe), %d to agents already wiped'
                 % (last - tr, n, th, n - th, first, max(0, n - th - first)))

    # ---- (d) ---------------------------------------------------------------------

    def scenario_d(self, hint):
        a = self.args
        n = a.agents
        iv = a.hint_interval if hint else a.poll_interval
        name = 'hint' if hint else 'poll'
        urls = None
        ports = self.proxy.listen(n)
        if hint:
            # moto's Publish reaches the first 100 subscriptions of a topic
            # (it reads one page of them): one topic per 100 agents, all
            # published to at once.  AWS takes 12.5 million per topic.
            topics = [self.sns.create_topic(Name='cmk-revocations-%d' % k)['TopicArn']
                      for k in range((n + SUBS_PER_TOPIC - 1) // SUBS_PER_TOPIC)]
            urls = []
            for i in range(n):
                u = self.sqs.create_queue(QueueName='cmk-vm-%d' % i)['QueueUrl']
                arn = '%s:sqs:%s:%s:cmk-vm-%d' % ('arn:aws', REGION, ACCOUNT, i)
                # Raw delivery: the EventBridge event itself, no SNS envelope
                # (moto signs each envelope with a fresh RSA key: seconds).
                self.sns.subscribe(TopicArn=topics[i // SUBS_PER_TOPIC], Protocol='sqs', Endpoint=arn,
                                   Attributes={'RawMessageDelivery': 'true'})
                # Through the proxy, so its requests are counted too.
                # Through the agent's own port of the proxy, as its KMS requests.
                urls.append('http://127.0.0.1:%d' % ports[i] + u[u.index('/', 8):])
        fleet = Fleet(self, name, n, iv, a.grace, urls, ports)
        self.proxy.set_rate(None)
        self.say('== (d) %s: %d agents, check_interval_s %d%s' % (
            name, n, iv, ', an SQS queue each, fed by one SNS topic' if hint else ', no hint'))
        fleet.start()
        t0 = fleet.t0
        # 1,000 unseals and long polls at once queue in moto for minutes.
        booted = fleet.wait_active(max(120, n * 0.4))
        ok('fleet_d_%s_all_agents_unseal' % name, booted,
           '%d/%d active' % (fleet.states().count('active'), n))
        time.sleep(a.d_settle)
        self.memory_note(fleet)
        tm = time.time()
        time.sleep(a.d_measure)
        kn, _ = self.window(tm, time.time())
        sn, _ = self.window(tm, time.time(), 'sqs')
        rate = kn / (time.time() - tm)
        self.say('(d) %s steady state: %.2f KMS req/s (%.1f per agent per hour), %.2f SQS req/s'
                 % (name, rate, rate * 3600 / n, sn / (time.time() - tm)))
        tr = time.time()          # before the call, as in scenario_abc
        self.deny(True)
        tp = tr
        if hint:
            ev = {'version': '0', 'id': str(uuid.uuid4()), 'detail-type': 'AWS API Call via CloudTrail',
                  'source': 'aws.kms', 'account': ACCOUNT, 'region': REGION, 'resources': [self.key],
                  'detail': {'eventSource': 'kms.amazonaws.com', 'eventName': 'PutKeyPolicy',
                             'requestParameters': {'keyId': self.key}}}
            tp = time.time()
            with concurrent.futures.ThreadPoolExecutor(len(topics)) as ex:
                list(ex.map(lambda t: self.sns.publish(TopicArn=t, Message=json.dumps(ev)), topics))
            self.say('(d) hint: SNS publish to %d queues (%d topics) took %.2f s in moto'
                     % (n, len(topics), time.time() - tp))
        bound = 30 if hint else iv + iv // 10 + 10 + 30
        end = tr + bound + 5
        while time.time() < end:
            if all(x is not None for x in fleet.wipes()):
                break
            time.sleep(0.5)
        fleet.stop()
        self.deny(False)
        w = fleet.wipes()
        late = [x[0] - tp for x in w if x and x[0] >= tr]
        if hint:
            hs = fleet.hint_sent()
            q = [x[0] - s0 for x, s0 in zip(w, hs) if x and s0]
            self.say('(d) hint: SQS SentTimestamp -> wipe (per agent, its own queue) p50 %.3f s, p99 %.3f s, max %.3f s (%d agents)'
                     % (pct(q, 50), pct(q, 99), max(q) if q else float('nan'), len(q)))
            self.d_breakdown(fleet, w, hs, tp)
        early = sum(1 for x in w if x and x[0] < tr)
        missing = sum(1 for x in w if x is None)
        rows = self.per_second(name, t0, time.time(), {'revoke': tr - t0})
        after = [r[1] for r in rows if r[0] >= int(tp - t0)]
        if hint and after:
            self.say('(d) hint: KMS requests after the publish: peak %d in one second, %d in the first 5 s '
                     '(hint_spread_ms %d, %d agents)' % (max(after), sum(after[:5]), a.hint_spread, n))
        self.say('(d) %s: %s -> wipe p50 %.2f s, p99 %.2f s, max %.2f s (%d of %d wiped, bound %d s)%s'
                 % (name, 'SNS publish' if hint else 'Deny', pct(late, 50), pct(late, 99),
                    max(late) if late else float('nan'), len(late), n, bound,
                    '; %d hint audit lines' % fleet.hint_lines() if hint else ''))
        ok('fleet_d_%s_every_agent_wipes_within_bound' % name,
           missing == 0 and early == 0 and all(d <= bound for d in late),
           '%d never wiped, %d before the revocation, bound %d s' % (missing, early, bound))
        if hint:
            for i in range(n):
                self.sqs.delete_queue(QueueUrl=self.sqs.get_queue_url(QueueName='cmk-vm-%d' % i)['QueueUrl'])
        return rate, late

    def d_breakdown(self, fleet, w, hs, tp):
        """The agent's part of publish -> wipe against the KMS's (moto's):
        per agent, its first KMS request to arrive at the proxy after the
        publish (its own proxy port says whose): publish and its message's
        SentTimestamp -> that arrival (SQS delivery, the long poll's
        return, hint_spread_ms, the agent's scheduling); arrival -> the
        proxy's answer (moto's queue and work); answer -> the wipe in the
        audit log (the agent again)."""
        first = self.first_kms(fleet, tp)
        got = [(i, r) for i, r in enumerate(first) if r]
        pub = [r[6] - tp for _, r in got]
        sent = [r[6] - hs[i] for i, r in got if hs[i]]
        kms = [r[0] - r[6] for _, r in got]
        after = [w[i][0] - r[0] for i, r in got if w[i] and w[i][0] >= r[6]]
        ops = {}
        for _, r in got:
            k = '%s %s' % (r[2], r[3])
            ops[k] = ops.get(k, 0) + 1

        def s3(xs):
            return 'p50 %.3f s, p99 %.3f s, max %.3f s' % (pct(xs, 50), pct(xs, 99),
                                                           max(xs) if xs else float('nan'))
        self.say("(d) hint: publish -> agent's KMS request %s; request arrival -> answer %s "
                 '(per agent, its first KMS request at the proxy after the publish; %d of %d agents; %s)'
                 % (s3(pub), s3(kms), len(got), fleet.n,
                    ', '.join('%s: %d' % kv for kv in sorted(ops.items()))))
        self.say("(d) hint: SQS SentTimestamp -> agent's KMS request %s (%d agents); answer -> wipe %s "
                 '(%d agents, audit log times in ms; hint_spread_ms %d is in the agent\'s part)'
                 % (s3(sent), len(sent), s3(after), len(after), self.args.hint_spread))

    def charts(self):
        if not shutil.which('gnuplot'):
            return
        for name, (path, marks) in self.series.items():
            png = os.path.join(self.out, '%s.png' % name)
            arrows = ''.join('set arrow from %f, graph 0 to %f, graph 1 nohead dt 2\n'
                             'set label "%s" at %f, graph 0.95\n' % (v, v, k, v + 0.5)
                             for k, v in marks.items())
            script = ('set terminal png size 1000,400\nset output "%s"\n'
                      'set xlabel "seconds"\nset ylabel "requests/s"\nset key top right\n'
                      'set title "fleet %s: KMS requests per second"\n%s'
                      'plot "%s" using 1:2 with lines title "KMS requests", '
                      '"" using 1:3 with lines title "throttled", '
                      '"" using 1:5 with lines title "SQS requests"%s\n'
                      % (png, name, arrows, path,
                         ', "" using 1:6 with lines dt 3 lw 2 title "quota"' if name == 'abc' else ''))
            subprocess.run(['gnuplot'], input=script.encode(), check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--agents', type=int, default=200)
    ap.add_argument('--interval', type=int, default=10, help='(a)-(c) check_interval_s')
    ap.add_argument('--grace', type=int, default=30)
    ap.add_argument('--a-len', type=int, default=25, help='(a) length, s')
    ap.add_argument('--a-wait', type=int, default=300,
                    help='(a) how long to wait for every agent to be active, s')
    ap.add_argument('--b-len', type=int, default=60, help='(b) length at least, s')
    ap.add_argument('--revoke-after', type=int, default=60, help='(c) this long into (b), s')
    ap.add_argument('--c-bound', type=int, default=0,
                    help='(c) revocation -> wipe bound, s (default: cmk-agent --print-load\'s + 30)')
    ap.add_argument('--throttle-grace', type=int, default=900, help='throttle_grace_s')
    ap.add_argument('--hint-spread', type=int, default=2000, help='hint_spread_ms')
    ap.add_argument('--hint-interval', type=int, default=300)
    ap.add_argument('--poll-interval', type=int, default=30)
    ap.add_argument('--d-settle', type=int, default=5)
    ap.add_argument('--d-measure', type=int, default=20)
    ap.add_argument('--scenarios', default='abc,hint')
    ap.add_argument('--agent', required=True)
    ap.add_argument('--cmkctl', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    h = Harness(a)
    try:
        h.say('fleet run %s: %d agents, scenarios %s, host %d CPUs'
              % (datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%SZ'), a.agents, a.scenarios,
                 os.cpu_count()))
        res = {}
        for s in a.scenarios.split(','):
            if s == 'abc':
                h.scenario_abc()
            elif s in ('hint', 'poll'):
                res[s] = h.scenario_d(s == 'hint')
        if 'hint' in res and 'poll' in res:
            (hr, hl), (pr, pl) = res['hint'], res['poll']
            h.say('(d) side by side: hint + %d s checks: %.2f KMS req/s, wipe p50 %.2f s p99 %.2f s; '
                  '%d s polling: %.2f KMS req/s, wipe p50 %.2f s p99 %.2f s; load ratio %.3f'
                  % (a.hint_interval, hr, pct(hl, 50), pct(hl, 99), a.poll_interval, pr,
                     pct(pl, 50), pct(pl, 99), hr / pr if pr else float('nan')))
        with open(os.path.join(a.out, 'requests.csv'), 'w') as f:
            f.write('# unix_time kind operation status throttled client_port agent(fleet/index, - unknown)'
                    ' arrival_unix_time proxy_port\n')
            for r in h.proxy.records:
                who = h.who(r)
                f.write('%.3f %s %s %d %d %d %s %.3f %d\n' % (r[0], r[1], r[2], r[3], r[4], r[5],
                                                               '%s/%d' % who if who else '-', r[6], r[7]))
        with open(os.path.join(a.out, 'report.txt'), 'w') as f:
            f.write('\n'.join(h.report) + '\n')
        h.charts()
    finally:
        h.close()
    print('1..%d' % tap_n)
    return 1 if tap_failed else 0


if __name__ == '__main__':
    sys.exit(main())
