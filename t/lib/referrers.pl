#!/usr/bin/perl

# A registry that knows only the referrers API, for the tests: GET or HEAD
# /v2/ answers {}; GET or HEAD /v2/<name>/referrers/<digest> answers 200
# with an OCI image index, application/vnd.oci.image.index.v1+json: the
# file DIR/index.json (read on every request, so a test can change it),
# or an index with no manifests when there is none.  With
# ?artifactType=<type> only the manifests of that artifactType are listed
# and the answer says OCI-Filters-Applied: artifactType.  The answer has
# an ETag (its sha256) and a matching If-None-Match gets 304.  Anything
# else: 404.  Every request is logged to DIR/requests.log as "METHOD
# PATH" before it is answered, so a test that has its answer can count.
# Usage: referrers.pl PORT DIR.  It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Digest::SHA qw(sha256_hex);
use Fcntl qw(:flock);
use JSON::PP;
use Serve;

my ($port, $dir) = @ARGV;

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    return scalar <$fh>;
}

sub answer {
    my ($c, $method, $status, $reason, $head, $body) = @_;
    my $out = "HTTP/1.1 $status $reason\r\n";
    $out .= "$_\r\n" for @$head;
    $out .= 'Content-Length: ' . length($body) . "\r\n"
            . "Connection: close\r\n\r\n";
    $out .= $body unless $method eq 'HEAD';
    print $c $out;
}

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    my ($method, $path) = $head =~ m{^(\S+) (\S+) HTTP/1\.[01]\r\n}
        or return;

    open my $log, '>>', "$dir/requests.log" or die;
    flock $log, LOCK_EX;
    print $log "$method $path\n";
    close $log;

    if ($method ne 'GET' && $method ne 'HEAD') {
        answer($c, $method, 405, 'Not Allowed', [], '');
        return;
    }

    if ($path eq '/v2/') {
        answer($c, $method, 200, 'OK',
               ['Content-Type: application/json',
                'Docker-Distribution-API-Version: registry/2.0'], '{}');
        return;
    }

    my ($filter) = $path =~ m{\?artifactType=([^&]+)$};
    if ($path !~ m{^/v2/[a-z0-9/._-]+/referrers/sha256:[0-9a-f]{64}(\?|$)}) {
        answer($c, $method, 404, 'Not Found',
               ['Content-Type: application/json'],
               '{"errors":[{"code":"NOT_FOUND","message":"no such"}]}');
        return;
    }

    my $json = slurp("$dir/index.json");
    my $index = defined $json ? decode_json($json)
              : { schemaVersion => 2,
                  mediaType => 'application/vnd.oci.image.index.v1+json',
                  manifests => [] };
    my @head = ('Content-Type: application/vnd.oci.image.index.v1+json',
                'Docker-Distribution-API-Version: registry/2.0');
    if (defined $filter) {
        $filter =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        $index->{manifests} = [grep { ($_->{artifactType} // '') eq $filter }
                               @{ $index->{manifests} }];
        push @head, 'OCI-Filters-Applied: artifactType';
    }
    my $body = JSON::PP->new->canonical->encode($index);
    my $etag = '"sha256:' . sha256_hex($body) . '"';
    push @head, "ETag: $etag";
    my ($inm) = $head =~ /\r\nIf-None-Match:\s*([^\r\n]*)/i;
    if (defined $inm && $inm eq $etag) {
        answer($c, 'HEAD', 304, 'Not Modified', \@head, '');
        return;
    }
    answer($c, $method, 200, 'OK', \@head, $body);
});
