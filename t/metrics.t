#!/usr/bin/perl

# registry_metrics: a known set of requests through a mirror with 2
# workers (reuseport, so both answer them), then the exact counters in
# /metrics.  Every upstream is behind a logging nginx (the "front"): its
# log says what each registry's upstream answered, and how many bytes it
# sent, independently of the module.
#
#   hub.test      a distribution registry: 3 blobs fetched twice (misses,
#                 then hits) and once more, a tag, a tags list, an
#                 unknown blob (404);
#   limited.test  answers 429 to everything;
#   bad.test      answers a blob whose content is not its digest;
#   redir.test    redirects blobs to a plain-http loopback URL, which the
#                 address policy refuses;
#   down.test     a port nothing listens on (no answer: "error").
#
# Every worker answers /metrics with the same values; promtool check
# metrics passes on them; a reload (HUP to the master) keeps every
# counter, also when it reorders the registries and adds one (which starts
# at 0); a restart starts them all from 0.  A real Prometheus scraping
# /metrics every second answers the same values from its query API, sees
# no counter reset across the reloads, and fires the example rules'
# RegistryDigestMismatch alert (conf-examples/registry-alerts.yml).

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use List::Util qw(sum0);
use RegistryTest;

my $reg = start_registry();
my $img = build_image(layers => [{ a => "metrics a\n" x 100 },
                                 { b => "metrics b\n" x 300 }]);
push_image($img, $reg, 'team/app:1');
my $type = 'application/vnd.oci.image.manifest.v1+json';
my @accept = ("Accept: $type");
my $manifest = decode_json(http_get($reg->{port}, '/v2/team/app/manifests/1',
                                    headers => \@accept)->{body});
my @blobs = ($manifest->{config}{digest},
             map { $_->{digest} } @{ $manifest->{layers} });
my $fake = 'sha256:' . sha256_hex('the blob');
my $unknown = 'sha256:' . ('0' x 64);

# the fronts: one nginx, a port (and a log of status and bytes sent) each
my %fport = map { $_ => free_port() } qw(hub limited bad redir);
my $front = start_nginx(plain => 1, ports => [values %fport], http => <<"EOF");
    log_format front '\$status \$bytes_sent';
    server {
        listen 127.0.0.1:$fport{hub};
        access_log \@DIR\@/hub.log front;
        location / { proxy_pass http://127.0.0.1:$reg->{port}; }
    }
    server {
        listen 127.0.0.1:$fport{limited};
        access_log \@DIR\@/limited.log front;
        location / { return 429; }
    }
    server {
        listen 127.0.0.1:$fport{bad};
        access_log \@DIR\@/bad.log front;
        default_type application/octet-stream;
        location / { return 200 "not the blob"; }
    }
    server {
        listen 127.0.0.1:$fport{redir};
        access_log \@DIR\@/redir.log front;
        location / { return 307 http://127.0.0.1:$fport{hub}/elsewhere; }
    }
EOF

# the front's log of one upstream: answers by class as the module names
# them, and the bytes sent
sub front_log {
    my ($name) = @_;
    my %n = (bytes => 0);
    for (file_lines("$front->{dir}/$name.log")) {
        my ($status, $bytes) = split ' ';
        $n{$status == 429 ? '429' : substr($status, 0, 1) . 'xx'}++;
        $n{bytes} += $bytes;
    }
    return \%n;
}

$fport{down} = free_port();     # nothing listens there
my $port = free_port();
my @names = qw(hub limited bad redir down);
my @registries = map { "    registry $_.test http://127.0.0.1:$fport{$_};\n" }
                 @names;
sub mirror_http {
    my (@reg) = @_;
    return join('', @reg) . <<"EOF";
    log_format workers '\$pid \$request_uri';
    server {
        listen 127.0.0.1:$port reuseport;
        access_log \@DIR\@/workers.log workers;
$MIRROR_PARAMS
        location = /metrics {
            registry_metrics;
            add_header X-Worker \$pid always;
            allow 127.0.0.1;
            deny all;
        }
    }
EOF
}
my $ng = start_nginx(ports => [$port], http => mirror_http(@registries));

sub get { return http_get($port, @_) }

# /metrics, parsed; the worker that answered
sub metrics {
    my $r = get('/metrics');
    die "/metrics: $r->{status}" unless $r->{status} == 200;
    my ($v, $types) = parse_metrics($r->{body});
    return ($v, $r->{headers}{'x-worker'}[0], $r->{body}, $types);
}

# a Prometheus scraping the mirror from the start, with the example rules
my $prom = start_prometheus(targets => ["127.0.0.1:$port"],
                            metrics_path => '/metrics', interval => '1s',
                            rules => ["$ROOT/conf-examples/registry-alerts.yml"]);
is(wait_prom_value($prom, 'up{job="registry"}', 1), 1,
   'prometheus scrapes /metrics');

# --- the traffic --------------------------------------------------------------

my $t0 = time;
my %body;
for my $round (1 .. 3) {
    for my $b (@blobs) {
        my $r = get("/v2/hub.test/team/app/blobs/$b");
        is($r->{status}, 200, "blob $b, round $round");
        is($r->{headers}{'x-registry-cache'}[0], $round == 1 ? 'MISS' : 'HIT',
           '... ' . ($round == 1 ? 'a miss' : 'a hit'));
        $body{$round == 1 ? 'upstream' : 'cache'} += length $r->{body};
    }
}
my $r = get('/v2/hub.test/team/app/manifests/1', headers => \@accept);
is($r->{status}, 200, 'tag: 200');
$body{upstream} += length $r->{body};
$r = get('/v2/hub.test/team/app/tags/list');
is($r->{status}, 200, 'tags list: 200');
$body{upstream} += length $r->{body};
$r = get("/v2/hub.test/team/app/blobs/$unknown");
is($r->{status}, 404, 'unknown blob: 404');
$body{errors} += length $r->{body};
$r = get("/v2/limited.test/x/app/blobs/$fake");
is($r->{status}, 429, 'rate limited upstream: 429');
$body{errors} += length $r->{body};
$r = get("/v2/bad.test/x/app/blobs/$fake");
ok($r->{body} ne 'not the blob', 'a blob not matching its digest: refused');
$r = get("/v2/redir.test/x/app/blobs/$fake");
is($r->{status}, 502, 'redirect to plain http on loopback refused: 502');
$body{errors} += length $r->{body};
$r = get("/v2/down.test/x/app/blobs/$fake");
is($r->{status}, 502, 'upstream down: 502');
$body{errors} += length $r->{body};
# not counted: the API root, a bad name, a request for no registry
is(get('/v2/')->{status}, 200, 'GET /v2/');
isnt(get('/v2/hub.test/Bad..Name/manifests/1')->{status}, 200, 'bad name');
isnt(get('/v2/nowhere.test/x/manifests/1')->{status}, 200, 'no registry');
my $t1 = time;

# the traffic was answered by both workers
my %pids = map { (split ' ')[0] => 1 }
           grep { m{ /v2/} } file_lines("$ng->{dir}/workers.log");
is(scalar keys %pids, 2, 'both workers answered the traffic');

# --- /metrics: exact values -------------------------------------------------

# (a front logs once its answer has gone, which can be after the mirror
# has answered our client: read with a bounded wait for the lines the
# traffic makes, 7 at hub and 1 at each other front but down)
my %front;
my %lines = (hub => 7, limited => 1, bad => 1, redir => 1, down => 0);
eventually(sub {
    %front = map { $_ => front_log($_) } @names;
    !grep { my $f = $front{$_};
            sum0(map { $f->{$_} } grep { $_ ne 'bytes' } keys %$f) < $lines{$_}
          } @names;
});
my $blob_bytes = $body{cache} / 2;

# every counter that should not be 0; any other is 0
my %want = (
    'requests_total{cache="hit",kind="blob",registry="hub.test"}' => 6,
    'requests_total{cache="miss",kind="blob",registry="hub.test"}' => 4,
    'requests_total{cache="miss",kind="manifest",registry="hub.test"}' => 1,
    'requests_total{cache="miss",kind="tags",registry="hub.test"}' => 1,
    'requests_total{cache="miss",kind="blob",registry="limited.test"}' => 1,
    'requests_total{cache="miss",kind="blob",registry="bad.test"}' => 1,
    'requests_total{cache="miss",kind="blob",registry="redir.test"}' => 1,
    'requests_total{cache="miss",kind="blob",registry="down.test"}' => 1,
    # 3 blobs, the tag's HEAD and GET by digest, the tags list; the 404
    'upstream_responses_total{registry="hub.test",status="2xx"}' => 6,
    'upstream_responses_total{registry="hub.test",status="4xx"}' => 1,
    'upstream_responses_total{registry="limited.test",status="429"}' => 1,
    'upstream_responses_total{registry="bad.test",status="2xx"}' => 1,
    'upstream_responses_total{registry="redir.test",status="3xx"}' => 1,
    'upstream_responses_total{registry="down.test",status="error"}' => 1,
    # what each front sent, headers and bodies
    (map { ("upstream_received_bytes_total{registry=\"$_.test\"}"
            => $front{$_}{bytes}) } grep { $front{$_}{bytes} } @names),
    'fills_total{registry="hub.test",result="verified"}' => 4,
    'fills_total{registry="bad.test",result="mismatch"}' => 1,
    'redirects_total{registry="redir.test",result="refused"}' => 1,
    'sent_bytes_total{registry="hub.test",source="cache"}' => $body{cache},
    'sent_bytes_total{registry="hub.test",source="upstream"}'
        => $body{upstream},
);
%want = map { ("nginx_registry_$_" => $want{$_}) } keys %want;

# the fronts agree with the counts above
is_deeply([map { $front{$_} } qw(hub limited bad redir)],
          [{ '2xx' => 6, '4xx' => 1, bytes => $front{hub}{bytes} },
           { 429 => 1, bytes => $front{limited}{bytes} },
           { '2xx' => 1, bytes => $front{bad}{bytes} },
           { '3xx' => 1, bytes => $front{redir}{bytes} }],
          "the fronts' logs: what each upstream answered");

my ($m, $worker, $text, $types) = metrics();
my @counters = grep { /^nginx_registry_\w+_total\{/ } sort keys %$m;
is(scalar @counters, 5 * (32 + 7 + 2 + 1 + 2 + 2 + 2 + 2),
   'every counter series of the 5 registries, from the start');

# the mirror's own OCI errors (the 404, 429, 502s) are not sent bytes
# (README, Monitoring): only the content of 200 and 206 answers
for my $k (@counters) {
    is($m->{$k}, $want{$k} // 0, "$k " . ($want{$k} // 0));
}

# timestamps: now for what answered, 0 for what did not
for my $n (@names) {
    my $ok = $n =~ /^(hub|bad|redir)$/;        # an answer below 500, not 429
    my $fail = $n =~ /^(hub|limited|down)$/;   # hub: no, its 404 is a 4xx
    $fail = 0 if $n eq 'hub';
    for ([success => $ok], [failure => $fail]) {
        my ($what, $set) = @$_;
        my $v = $m->{"nginx_registry_upstream_last_${what}_timestamp_seconds"
                     . "{registry=\"$n.test\"}"};
        if ($set) {
            ok($v >= int($t0) && $v <= $t1 + 1, "$n.test last $what: $v");
        } else {
            is($v, 0, "$n.test last $what: 0 (never)");
        }
    }
}

# gauges: the cache holds the 3 blobs, the manifest and the tags list
# (their files, with nginx's headers); the zones
ok($m->{'nginx_registry_cache_size_bytes{cache="registry"}'} >= $blob_bytes,
   'cache size: at least the blobs');
ok(!exists $m->{'nginx_registry_cache_max_size_bytes{cache="registry"}'},
   'no max_size, no max_size series');
for my $z ('registry', 'ngx_http_registry') {
    my ($size, $used) = map { $m->{"nginx_registry_zone_${_}_bytes"
                                   . "{zone=\"$z\"}"} } qw(size used);
    ok($size > 0 && $used > 0 && $used <= $size,
       "zone $z: $used of $size bytes used");
}
is($types->{nginx_registry_requests_total}, 'counter', 'TYPE counter');
is($types->{nginx_registry_cache_size_bytes}, 'gauge', 'TYPE gauge');

# promtool's own check of the format
spew(test_dir() . '/metrics.txt', $text);
my $out = run_out('sh', '-c', 'promtool check metrics < '
                              . test_dir() . '/metrics.txt');
is($?, 0, 'promtool check metrics passes') or diag $out;

# --- the same from every worker ---------------------------------------------

# counters and timestamps (the gauges are read when asked)
sub counts {
    my ($m) = @_;
    return { map { $_ => $m->{$_} }
             grep { /_total\{|_timestamp_seconds\{/ } keys %$m };
}
my %seen;
eventually(sub {
    my ($mm, $w) = metrics();
    push @{ $seen{$w} }, counts($mm);
    return keys %seen >= 2;
}, 10);
is(scalar keys %seen, 2, 'two workers answered /metrics');
is_deeply([map { @$_ } values %seen], [(counts($m)) x
                                       (map { @$_ } values %seen)],
          'each answered the same values');

# --- reloads --------------------------------------------------------------------

sub workers { return sort split ' ', run_out('ps', '-o', 'pid=', '--ppid',
                                             $ng->{pid}) }
sub reload {
    my ($label) = @_;
    my %old = map { $_ => 1 } workers();
    kill 'HUP', $ng->{pid};
    ok(eventually(sub {
        my @w = workers();
        return @w >= 2 && !grep { $old{$_} } @w;
    }, 20), "$label: new workers, the old ones gone");
}

reload('reload');
my ($after) = metrics();
is_deeply(counts($after), counts($m), 'reload: every counter kept');

# the registries in reverse order, and one more
my @more = (reverse(@registries),
            "    registry new.test http://127.0.0.1:$fport{hub};\n");
(my $conf = slurp("$ng->{dir}/nginx.conf")) =~ s/^    registry .*\n//mg;
$conf =~ s/^(    log_format workers)/join('', @more) . $1/me;
spew("$ng->{dir}/nginx.conf", $conf);
reload('reload with the registries reordered and one added');
($after) = metrics();
my %new = map { $_ => $after->{$_} } grep { /registry="new\.test"/ }
          keys %{ counts($after) };
is(scalar keys %new, 32 + 7 + 2 + 1 + 2 + 2 + 2 + 2 + 2,
   'new.test: every series');
is_deeply([grep { $new{$_} } sort keys %new], [], 'new.test: all 0');
delete $after->{$_} for keys %new;
is_deeply(counts($after), counts($m),
          'the other registries: every counter kept, under its own name');

# --- a real Prometheus --------------------------------------------------------

# every counter series as Prometheus has it, labels as in /metrics
sub prom_counters {
    my %v;
    for (@{ prom_query($prom, '{__name__=~"nginx_registry_.*_total"}') }) {
        my %l = %{ $_->{metric} };
        my $name = delete $l{__name__};
        delete @l{qw(instance job)};
        $v{$name . '{' . join(',', map { qq{$_="$l{$_}"} } sort keys %l)
           . '}'} = $_->{value};
    }
    return \%v;
}
my %want_prom = map { $_ => $after->{$_} }
                grep { /_total\{/ } keys %$after, keys %new;
$want_prom{$_} = 0 for grep { /_total\{/ } keys %new;
my $got;
eventually(sub { is_deeply_quiet($got = prom_counters(), \%want_prom) }, 30);
is_deeply($got, \%want_prom,
          'Prometheus: every counter series, with the values /metrics had');
is(wait_prom_value($prom, 'nginx_registry_requests_total{registry="hub.test",'
                          . 'kind="blob",cache="hit"}', 6), 6,
   'Prometheus: 6 blob hits');
is(wait_prom_value($prom, 'sum(nginx_registry_upstream_responses_total'
                          . '{status=~"5xx|429|error"})', 2), 2,
   'Prometheus: 2 failed upstream answers (429, none)');
is(prom_query($prom, 'sum(resets(nginx_registry_requests_total[5m]))')
       ->[0]{value}, 0, 'Prometheus: no counter reset across the reloads');
is(wait_prom_value($prom, 'ALERTS{alertname="RegistryDigestMismatch",'
                          . 'alertstate="firing",registry="bad.test"}', 1), 1,
   'Prometheus: the example rules fire RegistryDigestMismatch for bad.test');
is(scalar @{ prom_query($prom, 'ALERTS{alertname="RegistryDigestMismatch",'
                               . 'registry!="bad.test"}') }, 0,
   '... for no other registry');

# --- a restart: counters from 0 -------------------------------------------------

stop($ng->{pid});
$ng = start_nginx(dir => $ng->{dir}, conf => slurp("$ng->{dir}/nginx.conf"),
                  ports => [$port]);
($m) = metrics();
is_deeply([grep { $m->{$_} } sort keys %{ counts($m) }], [],
          'restart: every counter and timestamp 0');
is(wait_prom_value($prom, 'sum(nginx_registry_fills_total)', 0), 0,
   'Prometheus: the restart seen as 0');
ok(prom_query($prom, 'sum(resets(nginx_registry_fills_total[5m]))')
       ->[0]{value} >= 1, '... a counter reset');

sub is_deeply_quiet {
    my ($a, $b) = @_;
    return 0 unless keys %$a == keys %$b;
    for (keys %$b) {
        return 0 unless exists $a->{$_} && $a->{$_} == $b->{$_};
    }
    return 1;
}

done_testing;
