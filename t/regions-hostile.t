#!/usr/bin/perl

# Regions and failover against hostile upstreams and hostile clients: the
# findings of two reviews of the regions code, each kept as a regression.
#
# 1. Redirect state is per region: a region failed over to follows its
#    own redirects from its own URL (region B's relative Location was
#    resolved against region A's failed blob host).
# 2. Every region failing gives the client the OCI error: a tag check
#    that times out in a redirect chain, then a digest every region
#    fails, had no internal redirect left for the server's error_page
#    (nginx's HTML 500, "rewrite or internal redirection cycle").
# 3. A private entry is answered for only by the regions that filled it:
#    a registry whose first region is another registry's upstream, and
#    whose second region is hostile, could have its second region answer
#    the access check of the other registry's private entry.
# 4. Token slots per region, not per host=: two regions with the same
#    host= and their own credentials shared one slot, and region A's
#    Basic credentials went to region B.
# 5. A client's CDN-Loop naming a parent: the edge's tag check gets the
#    parent's 508, which says nothing of the upstream; it marked the tag
#    failed and every client got the old digest, STALE.
# 6. A client's CDN-Loop over 2048 bytes is refused at the mirror (400
#    UNSUPPORTED), before anything goes upstream; 2000 bytes pass.
# 7. An upstream Cache-Status entry with an open quote or a trailing
#    backslash is dropped: it would take the mirror's own entry into it.
# 8. A registry's regions are unique by name (host[:port]), whatever the
#    scheme.
#
# Hostile upstreams are t/lib/hostile.pl; where a registry has to be real
# (Basic credentials, tiers), CNCF distribution.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

sub code { return eval { $_[0]{json}{errors}[0]{code} } // '' }

my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json');

# --- hostile upstreams a, b, c, d --------------------------------------------

my %h;
for my $n (qw(a b c d)) {
    $h{$n} = start_hostile($n);
    ok($h{$n}{up}, "hostile upstream $n up");
}

sub mode { hostile_mode($h{ $_[0] }, $_[1], $_[2]) }

# the requests upstream $n logged that match $re
sub asked { hostile_asked($h{ $_[0] }, $_[1]) }

# a blob held by the upstreams named
sub put_blob {
    my ($content, @who) = @_;
    my $d = 'sha256:' . sha256_hex($content);
    spew("$h{$_}{dir}/blobs/" . substr($d, 7), $content) for @who;
    return $d;
}

my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry_node_id mirror-1;
    registry_tag_valid 1s;
    registry_tag_check_timeout 1s;

    registry ab.test $h{a}{url};
    registry_region ab.test $h{b}{url};

    registry abc.test $h{a}{url};
    registry_region abc.test $h{b}{url};
    registry_region abc.test $h{c}{url};

    registry abcd.test $h{a}{url};
    registry_region abcd.test $h{b}{url};
    registry_region abcd.test $h{c}{url};
    registry_region abcd.test $h{d}{url};

    # the victim's registry, and another whose first region is its
    # upstream and whose second is hostile
    registry a.test $h{a}{url} auth=client;
    registry e.test $h{a}{url};
    registry_region e.test $h{b}{url};

    registry cs.test $h{a}{url};

    server {
        listen 127.0.0.1:$port;
        proxy_read_timeout 10s;
        registry_redirect_http on;
        registry_redirect_allow 127.0.0.0/8;
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
        }
    }
EOF

# --- 1. redirect state per region ----------------------------------------------

{
    # (d holds it too: it answers its 503, not a 404)
    my $b = put_blob("a blob region b redirects relative\n" x 8, qw(b d));
    # a: to blob host d, which fails; b: a relative Location, to itself
    mode('a', 'rd', { redirect => "$h{d}{url}/v2/cdn" });
    mode('d', 'cdn', { status => 503 });
    mode('b', 'rd', { redirect => '/v2/bcdn' });
    mode('b', 'bcdn', {});
    my $r = http_get($port, "/v2/ab.test/rd/app/blobs/$b");
    is($r->{status}, 200,
       'region a redirects to a failing blob host, region b redirects '
       . 'relative: 200');
    is('sha256:' . sha256_hex($r->{body}), $b, '... the blob\'s bytes');
    is(asked('b', qr{^GET /v2/bcdn/app/blobs/\Q$b\E }), 1,
       "region b's relative Location resolved against region b's URL");
    is(asked('d', qr{/v2/bcdn/}), 0,
       "... never against region a's failed blob host");
    is(asked('d', qr{^GET /v2/cdn/app/blobs/\Q$b\E }), 1,
       "region a's blob host was asked once");
}

# --- 2. every region failing: the OCI error, never nginx's HTML ------------------

{
    # 2a. a tag check that times out after three redirect hops, then its
    # last known digest, which every region fails
    my $cfg = put_blob("config of tg\n", qw(a b));
    my $mbody = encode_json({ schemaVersion => 2,
        mediaType => 'application/vnd.oci.image.manifest.v1+json',
        config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                    digest => $cfg, size => 13 }, layers => [] });
    my $dm = 'sha256:' . sha256_hex($mbody);
    for my $n (qw(a b)) {
        spew("$h{$n}{dir}/manifests/v1", $mbody);
        spew("$h{$n}{dir}/manifests/$dm", $mbody);
    }
    mode('a', 'tg', { digest => 'auto' });
    my $r = http_get($port, '/v2/ab.test/tg/app/manifests/v1',
                     headers => \@oci);
    is($r->{status}, 200, 'a tag, from region a');
    my $checked = time;

    # the digest's cache file gone (the tag map keeps the digest)
    my $e = cache_entries("$ng->{dir}/cache");
    my @files = map { $e->{$_}[0] } grep { /\Q$dm\E/ } keys %$e;
    ok(@files >= 1, "... its digest's cache file, removed")
        and unlink @files;

    mode('a', 'tg', { status => 503,
                      head => { redirect => "$h{a}{url}/v2/tg2" } });
    mode('a', 'tg2', { head => { redirect => "$h{a}{url}/v2/tg3" } });
    mode('a', 'tg3', { head => { redirect => "$h{a}{url}/v2/tg4" } });
    mode('a', 'tg4', { delay => 3 });
    mode('b', 'tg', { status => 503 });
    wait_until($checked + 1.1);
    $r = http_get($port, '/v2/ab.test/tg/app/manifests/v1', headers => \@oci);
    is($r->{status}, 503, 'tag check timed out after three redirect hops, '
       . 'its digest failing in every region: 503');
    like($r->{headers}{'content-type'}[0] // '', qr{^application/json},
         '... an OCI body, not nginx\'s HTML');
    is(code($r), 'UNAVAILABLE', '... UNAVAILABLE');

    # (2b and 2c held before the fix: kept as guards)
    # 2b. three regions, each asking for a token, then 503: the third has
    # no internal redirect left for its token retry (the error log says
    # so), and the client still gets the OCI error
    my $b = put_blob("every region a token then 503\n", qw(a b c));
    mode($_, 'tk', { auth => "tok-$_", status => 503 }) for qw(a b c);
    $r = http_get($port, "/v2/abc.test/tk/app/blobs/$b");
    is($r->{status}, 502, 'three regions, each a token then 503: 502 (no '
       . 'redirect left for the third region\'s token retry)');
    like($r->{headers}{'content-type'}[0] // '', qr{^application/json},
         '... an OCI body, not nginx\'s HTML');
    is(code($r), 'UNAVAILABLE', '... UNAVAILABLE');
    is(asked('b', qr{tok-a}) + asked('c', qr{tok-[ab]}), 0,
       '... no region was sent another region\'s token');

    # 2c. four regions, each 503
    $b = put_blob("every region 503\n", qw(a b c d));
    mode($_, 'all', { status => 503 }) for qw(a b c d);
    $r = http_get($port, "/v2/abcd.test/all/app/blobs/$b");
    is($r->{status}, 503, 'four regions, each 503: 503');
    like($r->{headers}{'content-type'}[0] // '', qr{^application/json},
         '... an OCI body, not nginx\'s HTML');
    is(code($r), 'UNAVAILABLE', '... UNAVAILABLE');
    is(join(' ', map { asked($_, qr{^GET /v2/all/}) } qw(a b c d)),
       '1 1 1 1', '... each region asked once');

    unlike(slurp($ng->{error_log}), qr/internal redirection cycle/,
           'no "rewrite or internal redirection cycle" in the error log');
}

# --- 3. a private entry answered for only by the regions that filled it ---------

{
    my $secret = "the secret layer of team/secret on A\n" x 64;
    my $d = put_blob($secret, 'a');
    mode('a', 'team', { auth => 'tok-a', digest => 'auto',
                        token_body => '{"token":"not-tok-a"}' });
    mode('a', 'ping', { auth => 'tok-a' });
    # b: any HEAD of team/... is 200 and names the secret's digest
    mode('b', 'team', { head => { raw => "HTTP/1.1 200 OK\r\n"
                                  . "Content-Type: application/octet-stream\r\n"
                                  . 'Content-Length: ' . length($secret) . "\r\n"
                                  . "Docker-Content-Digest: $d\r\n"
                                  . "Connection: close\r\n\r\n" } });
    # a private manifest on A; b names it for any tag of tags/...
    my $mbody = encode_json({ schemaVersion => 2,
        mediaType => 'application/vnd.oci.image.manifest.v1+json',
        config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                    digest => $d, size => length $secret },
        layers => [], annotations => { secret => 'team/secret on A' } });
    my $dm = 'sha256:' . sha256_hex($mbody);
    spew("$h{a}{dir}/manifests/$dm", $mbody);
    mode('a', 'tags', { status => 503 });
    mode('b', 'tags', { head => { raw => "HTTP/1.1 200 OK\r\n"
        . "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
        . 'Content-Length: ' . length($mbody) . "\r\n"
        . "Docker-Content-Digest: $dm\r\n" . "Connection: close\r\n\r\n" } });

    my $r = http_get($port, "/v2/a.test/team/secret/blobs/$d",
                     headers => ['Authorization: Bearer tok-a']);
    is($r->{status}, 200, 'the victim pulls a private blob through a.test');
    is($r->{body}, $secret, '... its bytes');
    $r = http_get($port, "/v2/a.test/team/secret/manifests/$dm",
                  headers => ['Authorization: Bearer tok-a', @oci]);
    is($r->{status}, 200, '... and a private manifest');

    $r = http_get($port, "/v2/e.test/team/secret/blobs/$d");
    is($r->{status}, 403, 'control: anonymous through e.test, A up: 403');

    mode('a', 'team', { status => 503 });
    $r = http_get($port, "/v2/e.test/team/secret/blobs/$d");
    isnt($r->{status}, 200, 'A failing, hostile region b says 200: '
         . 'anonymous GET of the private blob through e.test is not 200');
    isnt($r->{body}, $secret, '... not the secret');
    $r = http_get($port, "/v2/e.test/team/secret/blobs/$d", method => 'HEAD');
    isnt($r->{headers}{'x-registry-cache'}[0] // '', 'HIT',
         '... a HEAD of it is not answered from the private entry');
    $r = http_get($port, "/v2/e.test/tags/x/manifests/v1", headers => \@oci);
    isnt($r->{body}, $mbody,
         '... nor the private manifest for a tag hostile region b names');
    is(asked('b', qr{^GET /v2/team/secret/blobs/\Q$d\E }), 1,
       '... the blob was asked of region b, as a miss');
}

# --- 4. token slots per region, not per host= --------------------------------------

{
    my $dir = test_dir();
    my %reg;
    for my $n (qw(a b)) {
        spew("$dir/htpasswd-$n", "user-$n:"
             . crypt("secret-$n", '$2y$05$abcdefghijklmnopqrstuu') . "\n");
        spew("$dir/cred-$n", "user-$n:secret-$n\n");
        $reg{$n} = start_registry(config => <<"EOF");
auth:
  htpasswd:
    realm: region-$n
    path: $dir/htpasswd-$n
EOF
    }
    my $img = build_image(layers => [{ f => "same host, two registries\n" }]);
    push_image($img, $reg{$_}, 'team/app:1', creds => "user-$_:secret-$_")
        for qw(a b);
    my $index = decode_json(slurp("$img->{layout}/index.json"));
    my ($mhex) = $index->{manifests}[0]{digest} =~ /sha256:(\w+)/;
    my $m = decode_json(slurp("$img->{layout}/blobs/sha256/$mhex"));
    my @blobs = ($m->{layers}[0]{digest}, $m->{config}{digest});

    # fronts that log what each region was sent as Authorization
    my %fp = map { $_ => free_port() } qw(a b);
    my $fronts = start_nginx(plain => 1, ports => [values %fp],
                             http => join '', map { <<"EOF" } qw(a b));
    log_format front_$_ '\$status "\$request" "\$http_authorization"';
    server {
        listen 127.0.0.1:$fp{$_};
        access_log \@DIR\@/$_.log front_$_;
        location / { proxy_pass http://127.0.0.1:$reg{$_}{port}; }
    }
EOF
    my $sport = free_port();
    my $same = start_nginx(ports => [$sport], http => <<"EOF");
    upstream ra { server 127.0.0.1:$fp{a}; }
    upstream rb { server 127.0.0.1:$fp{b}; }
    registry same.test http://ra host=registry.example
             credentials=$dir/cred-a;
    registry_region same.test http://rb host=registry.example
                    credentials=$dir/cred-b;
    map \$http_x_region \$first { default ra; rb rb; }
    server {
        listen 127.0.0.1:$sport;
        registry_region_first \$first;
$MIRROR_PARAMS
    }
EOF
    my $r = http_get($sport, "/v2/same.test/team/app/blobs/$blobs[0]");
    is($r->{status}, 200, 'same host=, region ra first: 200');
    like(join(', ', @{ $r->{headers}{'cache-status'} // [] }),
         qr/detail="region=ra"/, '... from ra');
    $r = http_get($sport, "/v2/same.test/team/app/blobs/$blobs[1]",
                  headers => ['X-Region: rb']);
    is($r->{status}, 200, 'same host=, region rb first: 200');
    like(join(', ', @{ $r->{headers}{'cache-status'} // [] }),
         qr/detail="region=rb"/, '... from rb');

    my $basic = sub { 'Basic ' . encode_base64($_[0], '') };
    my $ca = $basic->('user-a:secret-a');
    my $cb = $basic->('user-b:secret-b');
    ok(eventually(sub {
           grep { /"\Q$cb\E"$/ } file_lines("$fronts->{dir}/b.log") }),
       'region rb was sent its own credentials');
    is(scalar(grep { /\Q$ca\E/ } file_lines("$fronts->{dir}/b.log")), 0,
       "region rb was never sent region ra's credentials");
    is(scalar(grep { /\Q$cb\E/ } file_lines("$fronts->{dir}/a.log")), 0,
       "region ra was never sent region rb's credentials");
    stop($same->{pid});
    stop($fronts->{pid});
    stop($reg{$_}{pid}) for qw(a b);
}

# --- 5, 6. a client's CDN-Loop through an edge ------------------------------------

my $reg = start_registry();
push_image(build_image(layers => [{ a => "first\n" }]), $reg, 'library/app:1');
my $d1 = upstream_digest($reg, 'library/app', '1');

my $pport = free_port();
my $parent = start_nginx(ports => [$pport], http => <<"EOF");
    registry_node_id parent-0;
    registry_tag_valid 1s;
    registry example.test $reg->{url};
    log_format t '\$status "\$request" "\$http_cdn_loop"';
    server {
        listen 127.0.0.1:$pport;
        access_log \@DIR\@/t.log t;
$MIRROR_PARAMS
    }
EOF
my $eport = free_port();
my $edge = start_nginx(ports => [$eport], http => <<"EOF");
    registry_node_id edge-1;
    registry_tag_valid 2s;
    upstream parents { hash \$registry_cache_key consistent;
                       server 127.0.0.1:$pport max_fails=1 fail_timeout=30s; }
    registry example.test http://parents/example.test;
    server {
        listen 127.0.0.1:$eport;
$MIRROR_PARAMS
        location = /_test/health { registry_health; }
    }
EOF
my $plog = "$parent->{dir}/t.log";

{
    my $tag = '/v2/example.test/library/app/manifests/1';
    my $r = http_get($eport, $tag, headers => \@oci);
    is($r->{status}, 200, 'a tag through edge and parent');
    is($r->{headers}{'docker-content-digest'}[0], $d1, '... the first digest');
    my $checked = time;

    push_image(build_image(layers => [{ a => "second\n" }]), $reg,
               'library/app:1');
    my $d2 = upstream_digest($reg, 'library/app', '1');
    isnt($d2, $d1, 'the tag moved at the origin');
    wait_until($checked + 2.1);    # both tiers' validity over

    $r = http_get($eport, $tag, headers => [@oci, 'CDN-Loop: parent-0']);
    is($r->{status}, 508, "a client whose CDN-Loop names the parent gets "
       . "the parent's 508");
    ok(eventually(sub { grep { /^508 .*"parent-0, edge-1"$/ }
                        file_lines($plog) }),
       '... the parent refused the edge\'s tag check as a loop');
    my $health = decode_json(http_get($eport, '/_test/health')->{body});
    ok(!$health->{registries}{'example.test'}{failing},
       '... and the edge\'s health does not call the registry failing');
    is($health->{status}, 'ok', '... it is ok');

    $r = http_get($eport, $tag, headers => \@oci);
    is($r->{status}, 200, 'the next client, right after: 200');
    is($r->{headers}{'docker-content-digest'}[0], $d2,
       '... the moved tag: the loop marked nothing failed');
    isnt($r->{headers}{'x-registry-cache'}[0] // '', 'STALE', '... not STALE');
}

{
    my $index = http_get($eport, '/v2/example.test/library/app/manifests/1',
                         headers => \@oci);
    my $m = decode_json($index->{body});
    my ($layer, $config) = ($m->{layers}[0]{digest}, $m->{config}{digest});

    # CDN-Loop values of exact lengths: mirror ids, the last one padded
    my $loop = sub {
        my ($len) = @_;
        my $v = join ', ', map { sprintf 'mirror-%03d', $_ } 1 .. 200;
        $v = substr($v, 0, $len);
        $v =~ s/[ ,]+$//;
        return $v . ('x' x ($len - length $v));
    };
    is(length $loop->(2049), 2049, 'a CDN-Loop of 2049 bytes');

    my $refused = "/v2/example.test/library/app/blobs/$layer";
    my $pushed = grep { /\Q$layer\E/ } registry_requests($reg);
    for my $case (['one line of 2049 bytes', [$loop->(2049)]],
                  ['three lines of 700 bytes', [($loop->(700)) x 3]],
                  ['three lines of 6.5 KiB', [($loop->(6656)) x 3]])
    {
        my ($what, $lines) = @$case;
        my $r = http_get($eport, $refused,
                         headers => [map { "CDN-Loop: $_" } @$lines]);
        is($r->{status}, 400, "a client's CDN-Loop, $what: 400");
        is(code($r), 'UNSUPPORTED', '... UNSUPPORTED, an OCI body');
    }

    my $r = http_get($eport, "/v2/example.test/library/app/blobs/$config",
                     headers => ['CDN-Loop: ' . $loop->(2000)]);
    is($r->{status}, 200, "a client's CDN-Loop of 2000 bytes: 200");
    is('sha256:' . sha256_hex($r->{body}), $config, '... the blob');
    ok(eventually(sub { grep { /^200 "GET \S+\Q$config\E .*, edge-1"$/ }
                        file_lines($plog) }),
       '... which went to the parent with its CDN-Loop and the edge\'s id');
    is(scalar(grep { /\Q$layer\E/ } file_lines($plog)), 0,
       'the refused requests sent nothing to the parent');
    is(scalar(grep { /\Q$layer\E/ } registry_requests($reg)), $pushed,
       '... nor to the origin (only the push asked of it)');
}

stop($edge->{pid});
stop($parent->{pid});
stop($reg->{pid});

# --- 7. an upstream Cache-Status entry with an open quote, dropped --------------

{
    # a member: a token or string, then ;key[=value] parameters
    my $item = qr/(?:[A-Za-z*][\w:.\/*+-]*|"(?:[^"\\]|\\.)*")/;
    my $member = qr/^$item(?:\s*;\s*[a-z*][a-z0-9_.*-]*(?:=(?:$item|-?\d+))?)*$/;
    # the members of a Cache-Status list, or undef when it does not parse
    my $members = sub {
        my ($v) = @_;
        my @m;
        my ($cur, $quoted) = ('', 0);
        for (my $i = 0; $i < length $v; $i++) {
            my $c = substr($v, $i, 1);
            if ($quoted && $c eq '\\') {
                $cur .= substr($v, $i++, 2);
                next;
            }
            $quoted = !$quoted if $c eq '"';
            if (!$quoted && $c eq ',') {
                push @m, $cur;
                $cur = '';
                next;
            }
            $cur .= $c;
        }
        return undef if $quoted;
        push @m, $cur;
        s/^\s+|\s+$//g for @m;
        return (grep { !/$member/ } @m) ? undef : \@m;
    };
    my $own = 'mirror-1; fwd=miss; fwd-status=200';

    my $i = 0;
    for my $case (['a well-formed entry (control)', 'upstream-1; hit'],
                  ['an open quote', 'evil; detail="open'],
                  ['a trailing backslash', 'evil; detail="ends\\'],
                  ['an escaped closing quote', 'evil; detail="esc\\"'])
    {
        my ($what, $line) = @$case;
        $i++;
        my $b = put_blob("cache-status case $i\n", 'a');
        mode('a', "cs$i", { headers => ["Cache-Status: $line"] });
        my $r = http_get($port, "/v2/cs.test/cs$i/app/blobs/$b");
        is($r->{status}, 200, "upstream Cache-Status with $what: 200");
        my $v = join ', ', @{ $r->{headers}{'cache-status'} // [] };
        my $m = $members->($v);
        ok($m, '... Cache-Status parses as a list') or diag $v;
        is($m ? $m->[-1] : '', $own, '... its last entry the mirror\'s own');
        if ($line =~ /"/) {
            is($m ? scalar @$m : 0, 1, '... the upstream\'s entry dropped');
        } else {
            is($m ? $m->[0] : '', $line, '... the upstream\'s entry kept');
        }
    }
}

# --- 8. regions unique by name --------------------------------------------------

{
    my $bad = test_dir() . '/dup-region.conf';
    my $t = sub {
        my ($regions) = @_;
        my $conf = nginx_conf("registry dup.test http://127.0.0.1:1;\n"
                              . "$regions\nserver { listen 127.0.0.1:1; }");
        $conf =~ s/\@DIR\@/${\ test_dir()}/g;
        spew($bad, $conf);
        return run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null');
    };
    make_path(test_dir() . '/tmp');
    like($t->('registry_region dup.test http://127.0.0.2:1;'),
         qr/test is successful/, 'control: nginx -t takes two regions of '
         . 'two names');
    like($t->('registry_region dup.test https://127.0.0.1:1;'),
         qr/registry "dup\.test" has region "https:\/\/127\.0\.0\.1:1" already/,
         'nginx -t refuses two regions of one name (http and https)');
}

unlike(slurp($ng->{error_log}), qr/\[(?:alert|crit|emerg)\]|exited on signal/,
       'no worker crashed, nothing critical logged');

stop($ng->{pid});
stop($h{$_}{pid}) for sort keys %h;

done_testing();
