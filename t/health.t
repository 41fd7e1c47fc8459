#!/usr/bin/perl

# Health (issue 13, point 3): registry_health answers the mirror's state
# in JSON, as README.md (registry_health) defines it:
#   ok        - before any traffic, and while every registry's last upstream
#               contact succeeded; on every worker;
#   degraded  - 200: a registry failing (an upstream answering 503, or
#               refusing connections: status 0), one served stale, a
#               cache at 90% of its max_size or more, or the module's zone
#               with no room for a record (zone.full);
#   down      - 503: a cache folder that cannot be written (replaced by a
#               regular file: the tests run as root).
# Upstreams: a real distribution registry, and plain nginx stand-ins in
# front of it that answer 503 while a file says so.  The location is
# restricted by address: 127.0.0.9 gets 403.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();
my $img = build_image(layers => [{ h => "health\n" }]);
push_image($img, $reg, "library/app:$_") for 1 .. 4;

# stand-ins: one port per registry, each failing (503) while its file is
# there; "fill" serves the files that fill the small cache
my ($aport, $bport, $gone, $fport) = map { free_port() } 1 .. 4;
my $front = start_nginx(plain => 1, ports => [$aport, $bport, $fport],
                        http => <<"EOF");
    server {
        listen 127.0.0.1:$aport;
        location / {
            if (-f \@DIR\@/fail-stale) { return 503; }
            proxy_pass $reg->{url};
        }
    }
    server {
        listen 127.0.0.1:$bport;
        location / {
            if (-f \@DIR\@/fail-flaky) { return 503; }
            proxy_pass $reg->{url};
        }
    }
    server {
        listen 127.0.0.1:$fport;
        root \@DIR\@/files;
    }
EOF
mkdir "$front->{dir}/files";
sub fail_upstream {
    my ($name, $on) = @_;
    my $f = "$front->{dir}/fail-$name";
    $on ? spew($f, '') : unlink $f;
}

my $port = free_port();
my $health = <<'EOF';
        location = /health {
            registry_health;
            add_header X-Worker $pid always;
            allow 127.0.0.1;
            deny all;
        }
EOF
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry good.test  $reg->{url};
    registry flaky.test http://127.0.0.1:$bport;
    registry gone.test  http://127.0.0.1:$gone;
    registry stale.test http://127.0.0.1:$aport;
    registry_tag_valid 1s;
    server {
        listen 127.0.0.1:$port reuseport;
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
        include $ROOT/registry_params;
$health
    }
EOF

my @accept = ('Accept: application/vnd.oci.image.manifest.v1+json');
sub tag_get {
    my ($p, $registry, $tag) = @_;
    return http_get($p, "/v2/$registry/library/app/manifests/" . ($tag // 1),
                    headers => \@accept);
}
sub probe { return http_get($_[0] // $port, '/health') }
sub next_second { wait_until(int(time) + 1.05) }
sub near_now { my ($t) = @_; return $t && abs($t - time) < 5 }

# --- restricted by address ---------------------------------------------------

my $r = http_get($port, '/health', local => '127.0.0.9');
is($r->{status}, 403, 'from 127.0.0.9: 403');

# --- ok before any traffic, on every worker; every field typed ---------------

my (%pids, %states, %codes);
for (1 .. 30) {
    $r = probe();
    $pids{ $r->{headers}{'x-worker'}[0] // '' } = 1;
    $states{ eval { $r->{json}{status} } // 'none' }++;
    $codes{ $r->{status} }++;
}
ok(keys %pids >= 2, 'health answered by both workers')
    or diag join ' ', keys %pids;
is_deeply(\%states, { ok => 30 }, 'ok before any traffic, every time');
is_deeply(\%codes, { 200 => 30 }, '... 200');
is(($r->{headers}{'content-type'} // [''])->[0], 'application/json',
   'application/json');

my $j = $r->{json};
my %isbool = map { $_ => 1 } ('JSON::PP::Boolean');
sub is_int { return defined $_[0] && !ref $_[0] && $_[0] =~ /^\d+\z/ }
sub is_bool { return ref $_[0] && $isbool{ ref $_[0] } }
is_deeply([sort keys %$j], [qw(caches registries status zone)],
          'top-level fields: status, registries, caches, zone');
is_deeply([sort keys %{ $j->{registries} }],
          [qw(flaky.test gone.test good.test stale.test)],
          'every registry is listed');
my $bad = 0;
for my $name (sort keys %{ $j->{registries} }) {
    my $g = $j->{registries}{$name};
    is_deeply([sort keys %$g],
              [qw(failing last_failure last_success stale)],
              "$name: failing, stale, last_success, last_failure");
    ok(is_bool($g->{failing}) && is_bool($g->{stale}),
       "$name: failing and stale are booleans");
    ok(!$g->{failing} && !$g->{stale}, "$name: not failing, not stale");
    for my $k ('last_success', 'last_failure') {
        is_deeply([sort keys %{ $g->{$k} }], ['status', 'time'],
                  "$name: $k has time and status");
        is_deeply($g->{$k}, { time => 0, status => 0 },
                  "$name: $k is 0, 0 before any traffic");
        ok(is_int($g->{$k}{time}) && is_int($g->{$k}{status}),
           "$name: $k numbers");
    }
}
is_deeply([sort keys %{ $j->{caches} }], ['registry'], 'caches: registry');
my $c = $j->{caches}{registry};
is_deeply([sort keys %$c], [qw(max_size size writable)],
          'cache: size, max_size, writable');
ok(is_int($c->{size}) && is_int($c->{max_size}) && is_bool($c->{writable})
   && $c->{writable}, 'cache: numbers, writable true');
is_deeply([sort keys %{ $j->{zone} }], [qw(full size used)],
          'zone: size, used, full');
ok((!grep { !is_int($_) } values %{ $j->{zone} })
   && $j->{zone}{size} > 15 * 1024 * 1024
   && $j->{zone}{size} <= 16 * 1024 * 1024
   && $j->{zone}{used} > 0 && $j->{zone}{used} < $j->{zone}{size}
   && $j->{zone}{full} == 0, 'zone: the default 16m, some used, never full')
    or diag explain $j->{zone};

# --- ok after successful pulls -----------------------------------------------

my ($ok, $log) = skopeo_pull($port, 'good.test/library/app:1');
ok($ok, 'pull through good.test') or diag $log;
%states = ();
my $seen_ok = 0;
for (1 .. 10) {
    $r = probe();
    my $g = eval { $r->{json}{registries}{'good.test'} } // {};
    $seen_ok++ if $r->{status} == 200 && $r->{json}{status} eq 'ok'
                  && near_now($g->{last_success}{time})
                  && $g->{last_success}{status} == 200
                  && $g->{last_failure}{time} == 0 && !$g->{failing};
}
is($seen_ok, 10, 'after a pull: ok, last_success now with 200, on every ask')
    or diag $r->{body};
cmp_ok($r->{json}{caches}{registry}{size}, '>', 0, 'the cache holds it');

# --- degraded: an upstream answering 503, then recovered ---------------------

# each request for a tag not asked before (an expired cached one would be
# served stale); times are whole seconds: a failure in a later second
next_second();
my $t0 = int time;
is(tag_get($port, 'flaky.test', 1)->{status}, 200, 'flaky.test answers');
fail_upstream('flaky', 1);
isnt(tag_get($port, 'flaky.test', 2)->{status}, 200,
     'flaky.test upstream 503: the request fails');
$r = probe();
SKIP: {
    skip 'not within one second', 1 if int(time) != $t0;
    ok($r->{json}{registries}{'flaky.test'}{failing},
       'a failure right after a success (same second): failing')
        or diag $r->{body};
}
next_second();
isnt(tag_get($port, 'flaky.test', 3)->{status}, 200,
     'flaky.test upstream 503 a second later: fails');
$r = probe();
my $g = $r->{json}{registries}{'flaky.test'};
is($r->{status}, 200, 'degraded: 200');
is($r->{json}{status}, 'degraded', 'a failing registry: degraded');
ok($g->{failing}, 'flaky.test is failing') or diag $r->{body};
ok(!$g->{stale}, '... not stale (nothing cached was served)');
is($g->{last_failure}{status}, 503, 'last_failure status 503');
ok(near_now($g->{last_failure}{time}), 'last_failure time now');
is($g->{last_success}{status}, 200, 'last_success kept');
cmp_ok($g->{last_failure}{time}, '>', $g->{last_success}{time},
       '... the failure after it');
ok(!$r->{json}{registries}{'good.test'}{failing}, 'good.test is not');
my %seen;
$seen{ probe()->{json}{status} }++ for 1 .. 10;
is_deeply(\%seen, { degraded => 10 }, 'degraded on every worker');

fail_upstream('flaky', 0);
next_second();
is(tag_get($port, 'flaky.test', 4)->{status}, 200,
   'flaky.test answers again');
$r = probe();
$g = $r->{json}{registries}{'flaky.test'};
ok(!$g->{failing}, 'recovered: not failing') or diag $r->{body};
is($g->{last_failure}{status}, 503, '... the failure still shown');
cmp_ok($g->{last_success}{time}, '>', $g->{last_failure}{time},
       '... the success after it');
is($r->{json}{status}, 'ok', 'back to ok') or diag $r->{body};

# --- degraded: connection refused (status 0), then recovered -----------------

isnt(tag_get($port, 'gone.test')->{status}, 200, 'gone.test: refused');
$r = probe();
$g = $r->{json}{registries}{'gone.test'};
is($r->{json}{status}, 'degraded', 'a refused connection: degraded');
is($r->{status}, 200, '... 200');
ok($g->{failing}, 'gone.test failing') or diag $r->{body};
is($g->{last_failure}{status}, 0, 'last_failure status 0: no answer');
ok(near_now($g->{last_failure}{time}), '... time now');
is($g->{last_success}{time}, 0, 'never succeeded');

next_second();
my $back = start_nginx(plain => 1, ports => [$gone], http => <<"EOF");
    server {
        listen 127.0.0.1:$gone;
        location / { proxy_pass $reg->{url}; }
    }
EOF
is(tag_get($port, 'gone.test')->{status}, 200, 'gone.test listens again');
$r = probe();
ok(!$r->{json}{registries}{'gone.test'}{failing}, 'not failing')
    or diag $r->{body};
is($r->{json}{status}, 'ok', 'ok again');

# --- down: the cache folder cannot be written --------------------------------

my $cache = "$ng->{dir}/cache";
rename $cache, "$cache.away" or die "rename: $!";
spew($cache, "not a folder\n");
my %down;
for (1 .. 6) {
    $r = probe();
    $down{"$r->{status} " . ($r->{json}{status} // '')}++;
}
rename "$cache.away", $cache or die "rename back: $!" if unlink $cache;
is_deeply(\%down, { '503 down' => 6 }, 'cache folder a file: 503 down, on '
          . 'every ask');
is_deeply($r->{json}{caches}{registry}{writable}, JSON::PP::false,
          '"writable":false') or diag $r->{body};
like($r->{body}, qr/"writable":false/, '... as written');
$r = probe();
is($r->{status}, 200, 'folder back: 200');
is($r->{json}{status}, 'ok', '... ok');
ok($r->{json}{caches}{registry}{writable}, '... writable');
my @left = glob("$cache/.registry-health-*");
ok(!@left, 'the probe file is removed');

# --- degraded: served stale --------------------------------------------------

is(tag_get($port, 'stale.test')->{status}, 200, 'stale.test: tag cached');
ok(!probe()->{json}{registries}{'stale.test'}{stale}, 'not stale yet');
fail_upstream('stale', 1);
wait_until(time + 2.1);     # registry_tag_valid 1s
$r = tag_get($port, 'stale.test');
is($r->{headers}{'x-registry-cache'}[0], 'STALE', 'served STALE');
$r = probe();
$g = $r->{json}{registries}{'stale.test'};
ok($g->{stale}, 'stale: true') or diag $r->{body};
ok($g->{failing}, '... and failing (503)');
is($g->{last_failure}{status}, 503, '... last_failure 503');
is($r->{json}{status}, 'degraded', 'degraded');
is($r->{status}, 200, '... 200');
ok(!$r->{json}{registries}{'good.test'}{stale}, 'good.test not stale');

fail_upstream('stale', 0);
next_second();
wait_until(time + 1.1);
$r = tag_get($port, 'stale.test');
isnt(($r->{headers}{'x-registry-cache'} // [''])->[0], 'STALE',
     'upstream back: not STALE');
$r = probe();
$g = $r->{json}{registries}{'stale.test'};
ok(!$g->{failing}, 'upstream back: failing clears') or diag $r->{body};
ok($g->{stale}, '... stale stays for 60 s');
is($r->{json}{status}, 'degraded', '... so still degraded');

# --- degraded: a cache at 90% of its max_size --------------------------------

my $sport = free_port();
my $small = start_nginx(ports => [$sport], http => <<"EOF");
    proxy_cache_path \@DIR\@/small levels=1:2 keys_zone=small:1m max_size=1m
                     use_temp_path=off;
    registry good.test $reg->{url};
    server {
        listen 127.0.0.1:$sport;
$health
        location / {
            proxy_cache small;
            proxy_cache_valid 200 1h;
            proxy_pass http://127.0.0.1:$fport;
        }
    }
EOF
spew("$front->{dir}/files/$_", 'x' x 480_000) for 1, 2;
sub small { my $c = $_[0]{json}{caches}{small}; return $c->{size} / $c->{max_size} }
$r = probe($sport);
is($r->{json}{status}, 'ok', 'small cache empty: ok');
is($r->{json}{caches}{small}{max_size}, 1024 * 1024, 'max_size 1m');
is(http_get($sport, '/1')->{status}, 200, 'fill 1');
$r = probe($sport);
ok(small($r) > 0.4 && small($r) < 0.9, 'about half full')
    or diag $r->{body};
is($r->{json}{status}, 'ok', '... ok');
is(http_get($sport, '/2')->{status}, 200, 'fill 2');
$r = probe($sport);
ok(small($r) >= 0.9 && small($r) < 1, 'over 90% full') or diag $r->{body};
is($r->{json}{status}, 'degraded', 'a cache at 90%: degraded');
is($r->{status}, 200, '... 200');
ok($r->{json}{caches}{small}{writable}, '... and writable');

# --- down: the zone has no room for a record ---------------------------------

# registry_zone at its smallest, 32k; so many registries that their
# counters take every page (those that find no room are not counted, a
# warning), then a tag's record cannot be kept even after evicting every
# tag: zone.full is set
my $zport = free_port();
my $many = join '', map { "    registry r$_.test $reg->{url};\n" } 1 .. 80;
my $zng = start_nginx(ports => [$zport], http => <<"EOF");
    registry_zone 32k;
    registry full.test $reg->{url};
$many
    server {
        listen 127.0.0.1:$zport;
        include $ROOT/registry_params;
$health
    }
EOF
$r = probe($zport);
my $z = $r->{json}{zone};
cmp_ok($z->{size}, '<=', 32 * 1024, 'zone of at most 32k');
is($z->{full}, 0, 'not full yet');
is($r->{json}{status}, 'ok', 'ok');
is($r->{status}, 200, '... 200');
ok(eventually(sub { grep { /no room in the shared zone for the counters/ }
                    file_lines($zng->{error_log}) }),
   'counters fill the zone (warned)');
is(tag_get($zport, 'full.test')->{status}, 200,
   'a tag goes on without its record');
%down = ();
for (1 .. 6) {
    $r = probe($zport);
    $down{"$r->{status} " . ($r->{json}{status} // '')}++;
}
is_deeply(\%down, { '200 degraded' => 6 },
          'zone full: 200 degraded, on every ask (the mirror serves on; '
          . 'traffic must not take the node out)')
    or diag $r->{body};
ok(near_now($r->{json}{zone}{full}), 'zone.full: now');
ok($r->{json}{caches}{registry}{writable}, 'the cache is fine');

done_testing();
