#!/usr/bin/perl

# Allow and block lists: per registry, repository patterns read from files
# named on the "registry" line ("*" within one segment, "**" across them),
# matched on the name as the registry knows it ("library/" added, the
# URL's path prefix left out).  A repository not allowed, or blocked (the
# block list wins), gets 403 DENIED and nothing goes upstream, nor is
# anything served from the cache (a digest's entry is shared by every
# name).  Every route gets the check; registries without lists are
# unchanged; a bad or missing file fails nginx -t with its name and line;
# a reload takes a changed file.

use strict;
use warnings;
use lib 't/lib';
use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use RegistryTest;

my $hub = start_registry();

my $img = build_image(layers => [{ a => "allowlist image\n" }]);
for my $name (qw(library/nginx library/alpine library/redis library/base
                 team team/app/deep x/y/base other/secret-a))
{
    push_image($img, $hub, "$name:1");
}

# a plain nginx in front of the registry: a registry URL with a path
# prefix ("/pfx"), as when this mirror fronts another path-prefix mirror
my $pport = free_port();
my $front = start_nginx(plain => 1, ports => [$pport], http => <<"EOF");
    server {
        listen 127.0.0.1:$pport;
        location /v2/pfx/ {
            proxy_pass $hub->{url}/v2/;
        }
    }
EOF

my $d = test_dir() . '/mirror';
make_path($d);

spew("$d/allow.txt", <<'EOF');
# what this mirror serves

library/nginx          # the official one
  library/al*
team/**
**/base
EOF

spew("$d/block.txt", <<'EOF');
library/nginx
**/secret-*
EOF

spew("$d/pre.txt", "library/nginx\npfx/**\n");

my $port = free_port();
my $ng = start_nginx(dir => $d, ports => [$port, "127.0.0.2:$port"],
                     http => <<"EOF");
    log_format up '\$upstream_addr "\$request" \$status';
    access_log \@DIR\@/up.log up;

    registry docker.io  $hub->{url} allow=allow.txt;
    registry quay.io    $hub->{url} allow=$d/allow.txt;
    registry blocked.io $hub->{url} block=block.txt;
    registry both.io    $hub->{url} block=block.txt allow=allow.txt;
    registry open.io    $hub->{url};
    registry pre.io     http://127.0.0.1:$pport/pfx allow=pre.txt
                        library=on;

    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.2:$port;
        registry_default docker.io;
        registry_alias 127.0.0.2 docker.io;
        include $ROOT/registry_params;
    }
EOF

my @oci = ('Accept: application/vnd.oci.image.manifest.v1+json',
           'Accept: application/vnd.docker.distribution.manifest.v2+json');

sub get {
    my ($path, %o) = @_;
    return http_get($port, $path, headers => \@oci, %o);
}

# the mirror's own log: its lines for a request, each with the upstream it
# contacted or "-"
sub logged {
    my ($path) = @_;
    return grep { /"(?:GET|HEAD) \Q$path\E HTTP/ } file_lines("$d/up.log");
}

# what the registry was asked since the images were pushed
my $pushed = () = registry_requests($hub);

sub upstream_saw {
    my ($name) = @_;
    my @seen = registry_requests($hub);
    return scalar grep { m{ /v2/\Q$name\E/} } @seen[$pushed .. $#seen];
}

sub allowed {
    my ($path, $what) = @_;
    my $r = get($path);
    is($r->{status}, 200, "$what: $path served");
    return $r;
}

sub denied {
    my ($path, $name, $what, %o) = @_;
    my $before = () = logged($path);
    my $r = get($path, %o);
    ok($r->{status} == 403
       && ($r->{headers}{'content-type'}[0] // '') =~ m{^application/json},
       "$what: $path 403 with an OCI error");
    if (($o{method} // 'GET') eq 'GET') {
        is(eval { $r->{json}{errors}[0]{code} }, 'DENIED', '... DENIED');
        is(eval { $r->{json}{errors}[0]{message} },
           "repository \"$name\" is not mirrored here",
           '... saying it is not mirrored here');
    }
    my @new = eventually(sub { my @l = logged($path); @l > $before }) ?
              (logged($path))[$before .. $before] : ();
    is(scalar(grep { /^- ".*" 403$/ } @new), 1,
       '... logged as refused, and nothing went upstream');
    return $r;
}

# an allowed repository, its manifest and a layer now in the cache

my $r = allowed('/v2/docker.io/library/nginx/manifests/1',
                'allowed by an exact pattern');
my $manifest = decode_json($r->{body});
my $layer = $manifest->{layers}[0]{digest};
ok($layer, 'the image has a layer');

$r = allowed("/v2/docker.io/library/nginx/blobs/$layer",
             'a blob of an allowed repository');
is($r->{body},
   http_get($hub->{port}, "/v2/library/nginx/blobs/$layer")->{body},
   '... its content');
ok(eventually(sub { cached_digest($ng, $layer) }), '... now in the cache');

allowed('/v2/docker.io/nginx/manifests/1',
        'a Docker Hub single name gets library/ before the match');
allowed('/v2/docker.io/library/alpine/manifests/1', '"*" in a segment');
allowed('/v2/docker.io/team/app/deep/manifests/1', '"**": segments');
allowed('/v2/docker.io/x/y/base/manifests/1', '"**/base": segments before');
allowed('/v2/docker.io/base/manifests/1', '"**/base": library/base');
allowed('/v2/docker.io/library/nginx/tags/list', 'tags list of an allowed');
allowed('/v2/quay.io/team/manifests/1', '"team/**": team itself (none)');

# refused: nothing upstream, nothing from the cache

denied('/v2/docker.io/redis/manifests/1', 'library/redis',
       'not on the list');
my $info = qr{\[info\] .*registry: refused "/v2/docker\.io/redis/manifests/1": }
           . qr{DENIED repository "library/redis" is not mirrored here};
ok(eventually(sub { slurp("$d/error.log") =~ $info }), '... logged at info');
denied('/v2/docker.io/library/redis/manifests/1', 'library/redis',
       'not on the list, library/ written');
denied("/v2/docker.io/library/redis/blobs/$layer", 'library/redis',
       'a cached blob asked for under a name not on the list');
denied("/v2/docker.io/library/redis/manifests/$manifest->{config}{digest}",
       'library/redis', 'a manifest by digest');
denied('/v2/docker.io/library/redis/tags/list', 'library/redis',
       'tags list');
denied("/v2/docker.io/library/redis/referrers/$layer", 'library/redis',
       'referrers');
denied("/v2/docker.io/library/redis/blobs/$layer", 'library/redis',
       'a HEAD of a cached blob', method => 'HEAD');
is(upstream_saw('library/redis'), 0,
   'the registry saw nothing for library/redis');

denied('/v2/docker.io/library/alpine/x/manifests/1', 'library/alpine/x',
       '"*" never crosses "/"');
denied('/v2/docker.io/x/database/manifests/1', 'x/database',
       '"**/base" matches whole segments');
denied('/v2/docker.io/teams/app/manifests/1', 'teams/app',
       '"team/**" is not "team*/**"');
denied('/v2/quay.io/nginx/manifests/1', 'nginx',
       'library=off: no library/ added, "library/nginx" does not match');
denied('/v2/docker.io/library/nginx-x/manifests/1', 'library/nginx-x',
       'an exact pattern is exact');

# every route: ns, host alias, default registry

allowed('/v2/library/nginx/manifests/1?ns=docker.io', 'ns');
denied('/v2/library/redis/manifests/1?ns=docker.io', 'library/redis', 'ns');
allowed('/v2/nginx/manifests/1', 'default registry');
denied('/v2/redis/manifests/1', 'library/redis', 'default registry');
allowed('/v2/library/nginx/manifests/1', 'host alias', host => '127.0.0.2');
denied('/v2/library/redis/tags/list', 'library/redis', 'host alias',
       host => '127.0.0.2');
is(upstream_saw('library/redis'), 0,
   'the registry still saw nothing for library/redis');

# block lists; the block list wins over the allow list

denied('/v2/blocked.io/library/nginx/manifests/1', 'library/nginx',
       'blocked');
denied('/v2/blocked.io/other/secret-a/manifests/1', 'other/secret-a',
       'blocked by "**/secret-*"');
denied("/v2/blocked.io/other/secret-a/blobs/$layer", 'other/secret-a',
       'a cached blob under a blocked name');
is(upstream_saw('other/secret-a'), 0,
   'the registry saw nothing for other/secret-a');
allowed('/v2/blocked.io/library/redis/manifests/1',
        'a block list alone lets the rest through');

denied('/v2/both.io/library/nginx/manifests/1', 'library/nginx',
       'allowed and blocked: the block list wins');
allowed('/v2/both.io/library/alpine/manifests/1',
        'allowed and not blocked');
denied('/v2/both.io/library/redis/manifests/1', 'library/redis',
       'on neither list, with both');

# a registry without lists is unchanged

allowed('/v2/open.io/library/redis/manifests/1', 'no lists');
allowed('/v2/open.io/other/secret-a/manifests/1', 'no lists, any name');

# a registry URL with a path prefix: the prefix is not part of the name

allowed('/v2/pre.io/nginx/manifests/1', 'URL prefix: library/nginx');
ok(eventually(sub { grep { m{"(?:GET|HEAD) /v2/pfx/library/nginx/} }
                   file_lines($front->{access_log}) }),
   '... fetched below the prefix');
denied('/v2/pre.io/library/redis/manifests/1', 'library/redis',
       'URL prefix: "pfx/**" does not match library/redis');

# a reload takes a changed file

spew("$d/allow.txt", "library/redis\n");
kill 'HUP', slurp("$d/nginx.pid") =~ /(\d+)/;
ok(eventually(sub { get('/v2/docker.io/library/redis/manifests/1')
                        ->{status} == 200
                    && get('/v2/docker.io/library/nginx/manifests/1')
                           ->{status} == 403 }, 15),
   'after a reload: library/redis, now on the list, served; library/nginx '
   . 'not');
denied('/v2/docker.io/library/nginx/manifests/1', 'library/nginx',
       'after a reload: library/nginx, off the list');

# a reload with a bad file is refused, and the running one goes on

spew("$d/allow.txt", "library/redis\n\n# x\nLibrary/Nginx\n");
kill 'HUP', slurp("$d/nginx.pid") =~ /(\d+)/;
ok(eventually(sub { slurp("$d/error.log")
                    =~ m{\Q$d\E/allow\.txt:4: invalid pattern "Library/Nginx"} },
              15),
   'a reload with a bad pattern: the file and line logged');
ok(get('/v2/docker.io/library/redis/manifests/1')->{status} == 200
   && get('/v2/docker.io/library/nginx/manifests/1')->{status} == 403,
   '... and the running configuration goes on, its list too');

# nginx -t: a file that cannot be read or parsed

my $bad = test_dir() . '/bad.conf';
make_path(test_dir() . '/tmp');

sub nginx_t {
    my ($option, $file) = @_;
    spew(test_dir() . '/list.txt', $file) if defined $file;
    my $conf = nginx_conf("registry docker.io $hub->{url} $option;\n"
                          . "server { listen 127.0.0.1:1; }");
    $conf =~ s/\@DIR\@/${\ test_dir()}/g;
    spew($bad, $conf);
    my $out = run_out($NGINX, '-t', '-c', $bad, '-e', '/dev/null');
    return ($? != 0, $out);
}

my $list = test_dir() . '/list.txt';
my ($failed, $out);

for my $case (["# comment\nlibrary/nginx\nTeam/app\n", 3, 'Team/app'],
              ["a//b\n", 1, 'a//b'],
              ["ok\n***\n", 2, '***'],
              ["ok\n  # fine\n\nteam/x** # stars\n", 4, 'team/x**'],
              ["a b\n", 1, 'a b'],
              ["/a\n", 1, '/a'],
              ["a/\n", 1, 'a/'],
              ["a:1\n", 1, 'a:1'],
              ['x' x 256 . "\n", 1, 'x' x 256])
{
    my ($file, $line, $pattern) = @$case;
    ($failed, $out) = nginx_t('allow=list.txt', $file);
    ok($failed
       && $out =~ m{\Q$list\E:$line: invalid pattern "\Q$pattern\E"},
       "nginx -t fails: invalid pattern \"$pattern\", with the file and "
       . "line $line") or diag $out;
}

($failed, $out) = nginx_t('block=list.txt', "ok\nA\n");
ok($failed && $out =~ m{\Q$list\E:2: invalid pattern "A"},
   'nginx -t fails on a bad block list too, with its line');

($failed, $out) = nginx_t('allow=missing.txt');
ok($failed && $out =~ m{open\(\) "\Q${\ test_dir()}\E/missing\.txt" failed}
   && $out =~ m{missing\.txt" failed.* in \Q$bad\E:\d+},
   'nginx -t fails: a missing file, named, with the line of its registry')
    or diag $out;

($failed, $out) = nginx_t('allow=list.txt allow=list.txt', "ok\n");
ok($failed && $out =~ /duplicate parameter "allow=list.txt"/,
   'nginx -t fails: allow= twice');

($failed, $out) = nginx_t('allow=', "ok\n");
ok($failed && $out =~ /invalid parameter "allow="/,
   'nginx -t fails: allow= without a file');

($failed, $out) = nginx_t('allow=list.txt block=list.txt',
                          "# comments, blank lines, CRLF\r\n\r\n"
                          . "library/*\r\n  team/**  \t\n**/base");
ok(!$failed, 'nginx -t passes: comments, blank lines, CRLF, no last newline')
    or diag $out;

done_testing();
