#!/usr/bin/perl

# Regions (issue 12, points 1 and 2).  One registry, "example.test", is
# served in two regions, "apac" and "us": each an upstream{} block in
# front of a registry of its own (CNCF distribution, token auth with its
# own token server, signing key and credentials), behind a TLS front (a
# plain nginx) whose certificate names only that region's host,
# registry-apac.test or registry-us.test, and which answers 421 to any
# other Host.  The same images are pushed to both.
#
# Point 1: the first region is chosen per request by geo on the client's
# address, by a header a GeoDNS front sets (map), or by a constant; the
# region that served is in $registry_region and Cache-Status; Host and
# the TLS name are the region's (a block's own name fails the
# certificate check); each region's credentials go to its own token
# service, and tokens are kept per region host (no token is fetched
# twice while clients of both regions alternate).
#
# Point 2: a request for content not in the cache moves to the next
# region when the first refuses connections, times out, does not
# resolve, answers 500, 503 or 429, or is stopped: the client sees no
# error.  nginx's passive health inside a block keeps traffic off a dead
# server.  An expired tag whose region fails is refreshed from the next
# region; served stale only when every region fails.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use MIME::Base64;
use File::Path qw(make_path);
use RegistryTest;

my $d = test_dir();

# --- two regions: token server, registry, TLS front each --------------------

my $ca = make_ca();
my %region;

for my $name ('apac', 'us') {
    my $rd = "$d/$name";
    mkdir $rd;
    run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$rd/signer.key", '-out', "$rd/signer.crt",
           '-days', '2', '-subj', "/CN=$name token signer");
    spew("$rd/users", "user-$name:secret-$name\n");
    spew("$rd/credentials", "user-$name:secret-$name\n");
    my $tport = free_port();
    my $ts = spawn(cmd => ['perl', "$ROOT/t/lib/tokenserver.pl", $tport,
                           "$rd/signer.key", "$rd/signer.crt", 'test-issuer',
                           "$rd/token.log", "$rd/users"],
                   stdout => "$rd/ts.out");
    wait_port($tport, pid => $ts) or die "token server $name did not start";
    my $reg = start_registry(config => token_auth($tport, $rd));
    $region{$name} = { dir => $rd, reg => $reg, token_log => "$rd/token.log",
                       tport => $tport,
                       host => "registry-$name.test",
                       cert => make_cert($ca, "registry-$name.test") };
}

# the front: the region's host name only; "fail" files make it fail, or
# redirect to a blob host that refuses connections
my $closed = free_port();
my $other = make_cert($ca, 'someone-else.test');
my $origin = make_cert($ca, 'origin-apac.test');
my %fport = map { $_ => free_port() } keys %region;
my $fronts = start_nginx(plain => 1, ports => [values %fport],
                         http => (join '', map { my $f = $region{$_}; <<"EOF" } sort keys %region)
    log_format front_$_ '\$host \$ssl_server_name "\$request" \$status';
    server {
        listen 127.0.0.1:$fport{$_} ssl default_server;
        ssl_certificate $other->[0];
        ssl_certificate_key $other->[1];
        return 421;
    }
    server {
        listen 127.0.0.1:$fport{$_} ssl;
        server_name $f->{host};
        ssl_certificate $f->{cert}[0];
        ssl_certificate_key $f->{cert}[1];
        access_log \@DIR\@/$_.log front_$_;
        location / {
            if (-f \@DIR\@/$_-fail-503) { return 503; }
            if (-f \@DIR\@/$_-fail-500) { return 500; }
            if (-f \@DIR\@/$_-fail-307) {
                return 307 http://127.0.0.1:$closed/blobs\$uri;
            }
            if (-f \@DIR\@/$_-fail-429) {
                add_header Retry-After 7 always;
                return 429;
            }
            proxy_pass http://127.0.0.1:$f->{reg}{port};
            proxy_set_header Host \$host;
        }
    }
EOF
    . <<"EOF");
    # apac's registry under a second name, origin-apac.test, whose realm is
    # on that origin (spelled otherwise): /token there is apac's token
    # service; Host as it came
    log_format origin '\$http_host \$ssl_server_name "\$request" \$status';
    map \$upstream_http_www_authenticate \$origin_challenge {
        '~^Bearer realm="[^"]*"(?<rest>.*)\$'
            'Bearer realm="https://ORIGIN-apac.test:0$fport{apac}/token"\$rest';
        default \$upstream_http_www_authenticate;
    }
    server {
        listen 127.0.0.1:$fport{apac} ssl;
        server_name origin-apac.test;
        ssl_certificate $origin->[0];
        ssl_certificate_key $origin->[1];
        access_log \@DIR\@/origin.log origin;
        location = /token {
            proxy_pass http://127.0.0.1:$region{apac}{tport};
        }
        location / {
            proxy_pass http://127.0.0.1:$region{apac}{reg}{port};
            proxy_set_header Host \$host;
            proxy_hide_header WWW-Authenticate;
            add_header WWW-Authenticate \$origin_challenge always;
        }
    }
EOF
$region{$_}{log} = "$fronts->{dir}/$_.log" for keys %region;

sub fail_region {
    my ($name, $code) = @_;
    unlink glob "$fronts->{dir}/$name-fail-*";
    spew("$fronts->{dir}/$name-fail-$code", '') if $code;
}

# what a region's front passed on (answered 200 or failed: not the 401
# that asks for a token)
sub front_requests {
    my ($name) = @_;
    return grep { /"[A-Z]+ .*" (?!401)\d+$/ } file_lines($region{$name}{log});
}

# the mirror's token requests (the pushes asked for push too)
sub token_requests {
    my ($name) = @_;
    return scalar grep { /:pull$/ } file_lines($region{$name}{token_log});
}

# the same images in both regions, each with its own credentials
my @files = map { { "f$_" => "region layer $_\n" } } 1 .. 20;
my $img = build_image(layers => \@files);
my $tagged = build_image(layers => [{ t => "tagged, first\n" }]);
for my $name (sort keys %region) {
    push_image($img, $region{$name}{reg}, 'private/app:v1',
               creds => "user-$name:secret-$name");
    push_image($tagged, $region{$name}{reg}, 'private/tagged:v1',
               creds => "user-$name:secret-$name");
}

my $index = decode_json(slurp("$img->{layout}/index.json"));
my ($mhex) = $index->{manifests}[0]{digest} =~ /sha256:(\w+)/;
my @blobs = map { $_->{digest} }
            @{ decode_json(slurp("$img->{layout}/blobs/sha256/$mhex"))
               ->{layers} };
is(scalar @blobs, 20, 'the image has 20 layers, a fresh blob for each case');

# --- the mirror --------------------------------------------------------------

my $port = free_port();
my ($hport, $cport) = (free_port(), free_port());
my $silent_port = free_port();
my $silent = start_silent($silent_port);
my $dns = start_dns('registry-apac.test' => '127.0.0.1');

my $mirror = start_nginx(ca => slurp($ca->{crt}),
                         ports => [$port, $hport, $cport], http => <<"EOF");
    log_format regions '\$remote_addr \$registry_name \$registry_region '
                       '\$status "\$request"';
    resolver 127.0.0.1:$dns valid=1s ipv6=off;
    resolver_timeout 2s;
    registry_tag_valid 1s;
    registry_redirect_http on;
    registry_redirect_allow 127.0.0.0/8;

    upstream apac { server 127.0.0.1:$fport{apac}; }
    upstream us   { server 127.0.0.1:$fport{us}; }
    upstream dead { server 127.0.0.1:$closed; }
    upstream silent { server 127.0.0.1:$silent_port; }
    upstream pool {
        zone pool 64k;
        server 127.0.0.1:$closed max_fails=1 fail_timeout=60s;
        server 127.0.0.1:$fport{apac} max_fails=1 fail_timeout=60s;
    }

    geo \$client_region { default apac; 127.0.0.11 us; }
    map \$http_x_geo_region \$header_region { default apac; us us; }

    registry example.test https://apac host=registry-apac.test
             credentials=$region{apac}{dir}/credentials;
    registry_region example.test https://us host=registry-us.test
                    credentials=$region{us}{dir}/credentials;

    # the block's own name as Host and TLS name: the certificate fails
    # (a block of its own: one block is reached under one TLS name)
    upstream apac2 { server 127.0.0.1:$fport{apac}; }
    registry nohost.test https://apac2
             credentials=$region{apac}{dir}/credentials;

    # a first region that fails in each way, then us
    registry refused.test https://dead host=registry-apac.test;
    registry_region refused.test https://us host=registry-us.test
                    credentials=$region{us}{dir}/credentials;
    registry timeout.test https://silent host=registry-apac.test;
    registry_region timeout.test https://us host=registry-us.test
                    credentials=$region{us}{dir}/credentials;
    registry nodns.test https://nowhere.test;
    registry_region nodns.test https://us host=registry-us.test
                    credentials=$region{us}{dir}/credentials;

    # apac under another name through a block of its own, the realm on
    # that origin: fetched through the block (no DNS knows the name)
    upstream apac3 { server 127.0.0.1:$fport{apac}; }
    registry origin.test https://apac3 host=origin-apac.test:$fport{apac}
             credentials=$region{apac}{dir}/credentials;
    registry originc.test https://apac3 host=origin-apac.test:$fport{apac}
             auth=client;

    # a server of a block down: nginx's own passive health in the block
    registry pool.test https://pool host=registry-apac.test
             credentials=$region{apac}{dir}/credentials;

    server {
        listen 127.0.0.1:$port;
        access_log \@DIR\@/regions.log regions;
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
        registry_region_first \$client_region;
        location = /_registry/auth {
            registry_auth_relay;
        }
$MIRROR_PARAMS
    }
    server {
        listen 127.0.0.1:$hport;
        access_log \@DIR\@/regions.log regions;
        registry_region_first \$header_region;
$MIRROR_PARAMS
    }
    server {
        listen 127.0.0.1:$cport;
        access_log \@DIR\@/regions.log regions;
        registry_region_first us;
$MIRROR_PARAMS
    }
EOF

my $n = 0;
sub blob_get {
    my ($registry, $digest, %o) = @_;
    return http_get($o{port} // $port,
                    "/v2/$registry/private/app/blobs/$digest", %o);
}

sub status_of {
    my ($r) = @_;
    return join ', ', @{ $r->{headers}{'cache-status'} // [] };
}

sub logged {
    my ($pattern) = @_;
    my $count = 0;
    eventually(sub {
        $count = grep { /$pattern/ } file_lines("$mirror->{dir}/regions.log");
    });
    return $count;
}

# --- point 1: the first region per request ------------------------------------

my $r = blob_get('example.test', $blobs[0]);
is($r->{status}, 200, 'geo, a client of apac: the blob');
like(status_of($r), qr/fwd=miss.*detail="region=apac"/,
     '... Cache-Status names the region it came from');
is(at_least(1, sub { scalar grep { /blobs\/\Q$blobs[0]\E/ } front_requests('apac') }), 1,
   '... fetched from apac');
is(scalar(grep { /blobs\/\Q$blobs[0]\E/ } front_requests('us')), 0,
   '... not from us');
ok(eventually(sub { grep { /^registry-apac\.test registry-apac\.test "GET \/v2\/private\/app\/blobs/ }
                   front_requests('apac') }),
   "... with the region's host as Host and TLS name");

$r = blob_get('example.test', $blobs[1], local => '127.0.0.11');
is($r->{status}, 200, 'geo, a client of us (127.0.0.11): the blob');
like(status_of($r), qr/detail="region=us"/, '... from us');
is(at_least(1, sub { scalar grep { /blobs\/\Q$blobs[1]\E/ } front_requests('us') }), 1,
   '... fetched from us');
ok(eventually(sub { grep { /^registry-us\.test registry-us\.test "GET / }
                   front_requests('us') }),
   "... with us's host as Host and TLS name");
is(logged(qr/^127\.0\.0\.11 example\.test us 200 /), 1,
   '... $registry_region in the access log');

$r = blob_get('example.test', $blobs[1]);
like(status_of($r), qr/; hit$/, 'a hit names no region');
is(logged(qr/^127\.0\.0\.1 example\.test - 200 "GET \S+\Q$blobs[1]\E/), 1,
   '... nor does $registry_region');

$r = blob_get('example.test', $blobs[2], port => $hport,
              headers => ['X-Geo-Region: us']);
is($r->{status}, 200, 'map on a GeoDNS header: the blob');
like(status_of($r), qr/detail="region=us"/, '... from us');

$r = blob_get('example.test', $blobs[3], port => $cport);
like(status_of($r), qr/detail="region=us"/, 'a constant: from us');

# a block's name is not the registry's: no certificate names it
$r = blob_get('nohost.test', $blobs[4]);
is($r->{status}, 502, 'Host and TLS name from the block name: 502');
like(slurp($mirror->{error_log}), qr/certificate|SSL/i,
     '... the certificate check refused it');

# one block reached under two TLS names: refused, as nginx would offer a
# session made for one name under the other (and carry one name's requests
# on a connection checked for the other)
{
    my $bad = test_dir() . '/names.conf';
    my $t = sub {
        my ($lines) = @_;
        my $conf = nginx_conf("upstream blk { server 127.0.0.1:1; }\n"
                              . "upstream blk2 { server 127.0.0.1:1; }\n"
                              . "$lines\nserver { listen 127.0.0.1:1; }");
        $conf =~ s/\@DIR\@/${\ test_dir()}/g;
        spew($bad, $conf);
        return run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null');
    };
    make_path(test_dir() . '/tmp');
    my $refused = sub {
        my ($a, $b, $block) = @_;
        return qr/registry "a\.test" \(\Q$a\E\) and registry "b\.test" \(\Q$b\E\) reach one upstream, "\Q$block\E" of \S+names\.conf:\d+, under the TLS names "a\.example" and "b\.example"/;
    };
    like($t->("registry a.test https://blk host=a.example;\n"
              . "registry b.test https://blk host=b.example;"),
         $refused->('https://blk', 'https://blk', 'blk'),
         'nginx -t refuses one block under two TLS names, naming the '
         . 'URLs and where the block is');
    like($t->("registry a.test https://blk host=a.example;\n"
              . "registry b.test https://blk2 host=b.example;\n"
              . "registry_region b.test https://BLK host=b.example:8443;"),
         $refused->('https://blk', 'https://BLK', 'blk'),
         '... a region of another registry too (the port of Host is not '
         . 'in the name)');
    my $literal = "server { listen 127.0.0.1:2; location / { "
                  . "proxy_pass https://127.0.0.1:3; } }\n";
    like($t->("registry a.test https://127.0.0.1:3 host=a.example;\n"
              . "registry b.test https://127.0.0.1:03 host=b.example;\n"
              . $literal),
         $refused->('https://127.0.0.1:3', 'https://127.0.0.1:03',
                    '127.0.0.1'),
         '... an address a literal proxy_pass made a block of, its port '
         . 'written two ways');
    like($t->("registry a.test https://127.0.0.1 host=a.example;\n"
              . "registry b.test https://127.0.0.1:443/p host=b.example;\n"
              . "server { listen 127.0.0.1:2; location / { "
              . "proxy_pass https://127.0.0.1; } }\n"),
         $refused->('https://127.0.0.1', 'https://127.0.0.1:443',
                    '127.0.0.1'),
         '... 443 implied and written');
    like($t->("registry a.test https://blk host=a.example;\n"
              . "registry_region a.test https://blk2 host=a.example;\n"
              . "registry b.test https://blk host=a.example:443;\n"
              . "registry c.test https://blk2 host=A.EXAMPLE;"),
         qr/test is successful/, 'control: a block under one TLS name, '
         . 'from several registries');
    like($t->("registry a.test http://blk host=a.example;\n"
              . "registry b.test http://blk host=b.example;"),
         qr/test is successful/, 'control: plain http, two Host names');
    like($t->("registry a.test https://127.0.0.1:3 host=a.example;\n"
              . "registry b.test https://127.0.0.1:3 host=b.example;"),
         qr/test is successful/, 'control: an address no block is made '
         . 'of, under two names');
}

# each region's own credentials and token service; tokens per region host
is(token_requests('apac'), 1, 'apac: one token fetched, with its credentials');
is(token_requests('us'), 1, 'us: one token fetched, with its own');
for my $i (5, 6) {
    is(blob_get('example.test', $blobs[$i])->{status}, 200,
       "apac client, blob $i");
    is(blob_get('example.test', $blobs[$i + 2], local => '127.0.0.11')
       ->{status}, 200, "us client, blob " . ($i + 2));
}
is(token_requests('apac'), 1, 'clients of both regions in turn: apac\'s '
   . 'token kept');
is(token_requests('us'), 1, '... and us\'s, each under its region host');

# --- point 2: failover ----------------------------------------------------------

my %case = (refused => 9, timeout => 10, nodns => 11);
for my $name (sort keys %case) {
    my $b = $blobs[$case{$name}];
    $r = blob_get("$name.test", $b);
    is($r->{status}, 200, "first region $name: the blob, from the next region");
    like(status_of($r), qr/detail="region=us"/, '... us');
    is(at_least(1, sub { scalar grep { /blobs\/\Q$b\E/ } front_requests('us') }), 1,
       '... fetched from us once');
}

# 500, 503 and 429 from apac: the next region, for a fresh blob and for
# the tag's check (expired each time)
for my $code (500, 503, 429) {
    fail_region('apac', $code);
    wait_until(time + 1.1);
    my $before = () = front_requests('apac');
    my $b = $code == 500 ? $blobs[12] : $code == 503 ? $blobs[13] : undef;
    if ($b) {
        $r = blob_get('example.test', $b);
        is($r->{status}, 200, "apac answers $code: the blob");
        like(status_of($r), qr/detail="region=us"/, '... from us');
    }
    $r = http_get($port, '/v2/example.test/private/app/manifests/v1',
                  headers => ['Accept: application/vnd.oci.image.manifest.v1+json']);
    is($r->{status}, 200, "apac answers $code: the tag's manifest");
    # (the front logs after it answered: a bounded wait for the line)
    ok(eventually(sub { scalar(() = front_requests('apac')) > $before }),
       '... apac was asked first');
}
fail_region('apac', 0);

# apac redirects to a blob host that is down: the next region
fail_region('apac', 307);
$r = blob_get('example.test', $blobs[18]);
is($r->{status}, 200, 'apac redirects to a dead blob host: the blob');
like(status_of($r), qr/detail="region=us"/, '... from us');
like(slurp($mirror->{error_log}),
     qr/region "apac" failed \(status 502\); trying region "us"/,
     '... after the redirect target failed');
fail_region('apac', 0);

# nginx's passive health in a block: the dead server is tried once
for my $i (14 .. 17) {
    is(blob_get('pool.test', $blobs[$i])->{status}, 200,
       "a block with a dead server: blob $i");
}
is(scalar(grep { /connect\(\) failed.*pool\.test.*127\.0\.0\.1:$closed/ }
          file_lines($mirror->{error_log})),
   1, '... the dead server was tried once: max_fails keeps the others off it');

# an expired tag whose region fails: refreshed from the next region
my $tag = sub {
    return http_get($port, '/v2/example.test/private/tagged/manifests/v1',
                    headers => ['Accept: application/vnd.oci.image.manifest.v1+json']);
};
$r = $tag->();
is($r->{status}, 200, 'a tag, from apac');
my $old = $r->{headers}{'docker-content-digest'}[0];

my $newer = build_image(layers => [{ t => "tagged, second, us only\n" }]);
push_image($newer, $region{us}{reg}, 'private/tagged:v1',
           creds => 'user-us:secret-us');
my $new = decode_json(slurp("$newer->{layout}/index.json"))
          ->{manifests}[0]{digest};
isnt($new, $old, 'the tag moved in us only');

fail_region('apac', 503);
wait_until(time + 1.1);
$r = $tag->();
is($r->{status}, 200, 'expired, apac failing: 200');
is($r->{headers}{'docker-content-digest'}[0], $new,
   '... refreshed from us: the digest us names now');
isnt($r->{headers}{'x-registry-cache'}[0], 'STALE', '... not stale');

fail_region('us', 503);
wait_until(time + 1.1);
$r = $tag->();
is($r->{status}, 200, 'expired, every region failing: 200');
is($r->{headers}{'x-registry-cache'}[0], 'STALE', '... stale');
is($r->{headers}{'docker-content-digest'}[0], $new, '... the last known digest');
like(slurp($mirror->{error_log}), qr/no region is left/,
     '... after every region was tried');
fail_region('us', 0);
fail_region('apac', 0);

# a realm on the region's origin: through the region's block, with the
# origin's name as Host and TLS name, never resolved
my $tokens = token_requests('apac');
$r = blob_get('origin.test', $blobs[19]);
is($r->{status}, 200, 'a realm on the region\'s origin: the blob');
is(at_least($tokens + 1, sub { token_requests('apac') }), $tokens + 1,
   '... one token, from the realm on the origin');
ok(eventually(sub { grep { /^origin-apac\.test:$fport{apac} origin-apac\.test "GET \/token\?/ }
                   file_lines("$fronts->{dir}/origin.log") }),
   '... fetched through the block, the region\'s Host and TLS name (not '
   . 'the realm\'s spelling)');

# the same through the token relay of an auth=client registry: the realm
# is asked twice there (before and after its subrequest)
$tokens = token_requests('apac');
$r = http_get($port, '/_registry/auth?service=originc.test'
              . '&scope=repository:private/app:pull',
              headers => ['Authorization: Basic '
                          . encode_base64('user-apac:secret-apac', '')]);
is($r->{status}, 200, 'the relay, a realm on the region\'s origin: 200');
like($r->{body}, qr/"token"/, '... a token');
is(at_least($tokens + 1, sub { token_requests('apac') }), $tokens + 1,
   '... from the realm on the origin');
unlike(slurp($mirror->{error_log}),
       qr/origin-apac\.test could not be resolved|token realm .* not fetched/,
       '... never resolved, never refused');
is(at_least(2, sub { scalar grep { /^origin-apac\.test:$fport{apac} origin-apac\.test "GET \/token\?/ }
                     file_lines("$fronts->{dir}/origin.log") }), 2,
   '... through the block, the region\'s Host and TLS name');

# a region stopped: a whole pull, skopeo, apac's clients
stop($region{apac}{reg}{pid});
my ($ok, $log) = skopeo_pull($port, 'example.test/private/app:v1');
ok($ok, 'apac stopped: a whole pull of an apac client succeeds') or diag $log;

done_testing();

