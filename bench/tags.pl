#!/usr/bin/perl

# Tag checks, side by side in one run on loopback ("make bench-tags"): what
# one tag pulled PULLS times over PERIODS validity periods costs the
# upstream in manifest GETs (which Docker Hub counts against its pull rate
# limit) and HEADs (which it does not), through
#
#   module        this module, registry_tag_valid VALID seconds;
#   plain         a hand-written nginx proxy_cache config, proxy_cache_valid
#                 200 VALID seconds (nginx's defaults otherwise: HEAD
#                 turned into GET, no revalidation);
#   distribution  CNCF distribution 2.8 in proxy mode (proxy.remoteurl),
#                 whose tag lifetime cannot be configured: it asks its
#                 upstream about the tag on every tag request.
#
# One origin registry; in front of it one counting nginx with a port per
# mirror, whose access log ("port method path") gives each mirror's
# upstream requests.  A pull is what docker does with a tag: HEAD
# /v2/<repo>/manifests/<tag>, then GET of the same tag, with docker's
# Accept lines.  Each mirror's pulls run in a process of their own, spread
# evenly over PERIODS * VALID seconds (a pull that falls behind its slot
# goes at once, and the lag is reported).  Every server is started here on
# 127.0.0.1 and stopped by pid at the end.  PULLS, PERIODS and VALID scale
# it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use RegistryTest;

my $pulls = $ENV{PULLS} // 1000;
my $periods = $ENV{PERIODS} // 10;
my $valid = $ENV{VALID} // 2;

for my $tool (qw(docker-registry skopeo umoci)) {
    run_out('sh', '-c', "command -v $tool") =~ /\S/
        or die "bench needs $tool\n";
}

my @targets = qw(module plain distribution);
my $repo = 'bench/app';
my $tag = 'v1';
my @accept = map { "Accept: $_" }
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json';

# --- origin, and the counting nginx in front of it ----------------------------

print STDERR "setting up: origin registry, counting nginx, three mirrors\n";
my $origin = start_registry();
my $img = build_image(layers => [{ small => "bench tags\n" }]);
push_image($img, $origin, "$repo:$tag");
my $digest = upstream_digest($origin, $repo, $tag);

my %count = map { $_ => free_port() } @targets;
my $counter = start_nginx(plain => 1, ports => [values %count], http => <<"EOF"
    log_format count '\$server_port \$request_method \$request_uri';
    server {
@{[ map { "        listen 127.0.0.1:$count{$_};\n" } @targets ]}
        access_log \@DIR\@/count.log count;
        location / {
            proxy_pass $origin->{url};
            proxy_set_header Host \$http_host;
        }
    }
EOF
);

# --- the mirrors --------------------------------------------------------------

my %port = map { $_ => free_port() } qw(module plain);

start_nginx(ports => [$port{module}], http => <<"EOF");
    access_log off;
    registry docker.io http://127.0.0.1:$count{module};
    registry_tag_valid ${valid}s;
    server {
        listen 127.0.0.1:$port{module};
        registry_default docker.io;
        include $ROOT/registry_params;
    }
EOF

# what an operator writes by hand today, with the same validity
start_nginx(plain => 1, ports => [$port{plain}], http => <<"EOF");
    access_log off;
    proxy_cache_path \@DIR\@/plain levels=1:2 keys_zone=plain:8m
                     use_temp_path=off;
    server {
        listen 127.0.0.1:$port{plain};
        location /v2/ {
            proxy_pass http://127.0.0.1:$count{plain};
            proxy_cache plain;
            proxy_cache_valid 200 ${valid}s;
            proxy_cache_lock on;
        }
    }
EOF

my $dist = start_registry(config => <<"EOF");
proxy:
  remoteurl: http://127.0.0.1:$count{distribution}
EOF
$port{distribution} = $dist->{port};

# --- the pulls ------------------------------------------------------------------

# One mirror's pulls, in a child process: each in its slot of the schedule;
# a failed pull is one whose HEAD or GET is not 200 with the origin's
# digest.  Writes "failed maxlag" to $out.
sub pull_all {
    my ($t, $start, $out) = @_;
    alarm($periods * $valid + 600);
    my $step = $periods * $valid / $pulls;
    my ($failed, $lag) = (0, 0);
    my $path = "/v2/$repo/manifests/$tag";
    for my $i (0 .. $pulls - 1) {
        my $slot = $start + $i * $step;
        my $late = time - $slot;
        if ($late < 0) {
            sleep(-$late);      # the spread over time is the point
        } elsif ($late > $lag) {
            $lag = $late;
        }
        my $ok = 1;
        for my $method ('HEAD', 'GET') {
            my $r = eval { http_get($port{$t}, $path, method => $method,
                                    headers => \@accept, timeout => 10) };
            $ok = 0 unless $r && $r->{status} == 200
                && ($r->{headers}{'docker-content-digest'}[0] // '')
                   eq $digest;
        }
        $failed++ unless $ok;
    }
    spew($out, "$failed $lag\n");
}

my $d = test_dir();
my $start = time + 1;
my %child;
for my $t (@targets) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # no END blocks here: they would stop the parent's servers
        eval { pull_all($t, $start, "$d/pulls-$t") };
        print STDERR "$t: $@" if $@;
        POSIX::_exit(0);
    }
    $child{$t} = $pid;
}
print STDERR "pulling: $pulls pulls per mirror over $periods periods of "
    . "${valid}s\n";
for my $t (@targets) {
    waitpid($child{$t}, 0);
}
my $elapsed = time - $start;

# the counting nginx logs each request once it has answered it: read the
# log once it has stopped growing
my $log = "$counter->{dir}/count.log";
my $last = -1;
eventually(sub {
    my $n = () = file_lines($log);
    return 1 if $n == $last;
    $last = $n;
    sleep 0.1;
    return 0;
}, 5);

my %n;
my %port_of = reverse %count;
for (file_lines($log)) {
    my ($p, $method, $uri) = split ' ';
    my $t = $port_of{$p} or next;
    my $kind = $uri =~ m{^/v2/\Q$repo\E/manifests/} ? "manifest $method"
             : 'other';
    $n{$t}{$kind}++;
}

# --- report ---------------------------------------------------------------------

printf "nginx %s, %d pulls (HEAD + GET of one tag, docker's Accept lines) "
       . "per mirror over %d periods of %ds, %.1f s\n\n",
       (run_out('nginx', '-v') =~ m{nginx/(\S+)})[0], $pulls, $periods,
       $valid, $elapsed;
# a Markdown table, for README.md
print "| mirror | manifest GETs upstream | manifest HEADs upstream "
    . "| other requests upstream | failed pulls | max lag s |\n"
    . "|---|---|---|---|---|---|\n";
for my $t (@targets) {
    my ($failed, $lag) = split ' ', slurp("$d/pulls-$t") || "$pulls 0";
    printf "| %s | %d | %d | %d | %d | %.2f |\n", $t,
           $n{$t}{'manifest GET'} // 0, $n{$t}{'manifest HEAD'} // 0,
           $n{$t}{other} // 0, $failed, $lag;
}
