#!/usr/bin/perl

# A token server for the tests, as Docker Hub's and Harbor's work: GET
# /token?service=S&scope=repository:NAME:pull answers {"token": JWT, ...}
# signed RS256 with KEY, the certificate CRT in the header's x5c, which the
# registry verifies against its rootcertbundle.  With a USERS file
# ("user:password" lines) Basic credentials are checked: a known user gets
# what the scope asks for, anyone else only pull on names under "public/".
# Every request is logged to LOG as "user scope".  PAD adds a claim of
# that many bytes, for big tokens.
# Usage: tokenserver.pl PORT KEY CRT ISSUER LOG [USERS] [EXPIRES] [PAD]
# It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use JSON::PP;
use MIME::Base64;
use Serve;

my ($port, $key, $crt, $issuer, $log, $users, $expires, $pad) = @ARGV;
$expires ||= 300;

my %user;
if ($users && -e $users) {
    open my $fh, '<', $users or die;
    while (<$fh>) {
        chomp;
        my ($u, $p) = split /:/, $_, 2;
        $user{$u} = $p;
    }
}

sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

my $der = do {
    local $/;
    open my $fh, '-|', 'openssl', 'x509', '-in', $crt, '-outform', 'DER'
        or die;
    <$fh>;
};

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    my ($query) = $head =~ m{^GET /token\?(\S*) HTTP};
    my %q;
    for (split /&/, $query // '') {
        my ($k, $v) = split /=/, $_, 2;
        $v //= '';
        $v =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        $q{$k} = $v;
    }
    my $who = '-';
    if ($head =~ /^Authorization: Basic (\S+)/mi) {
        my ($u, $p) = split /:/, decode_base64($1), 2;
        if (!defined $user{$u} || $user{$u} ne $p) {
            print $c "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                   . "Connection: close\r\n\r\n";
            return;
        }
        $who = $u;
    }
    open my $lf, '>>', $log or die;
    print $lf "$who " . ($q{scope} // '-') . "\n";
    close $lf;

    my @access;
    if (($q{scope} // '') =~ /^repository:([^:]+):([a-z,]+)$/) {
        my ($name, $actions) = ($1, $2);
        my @granted = $who ne '-' ? split(/,/, $actions)
                    : $name =~ m{^public/} ? ('pull') : ();
        push @access, { type => 'repository', name => $name,
                        actions => \@granted } if @granted;
    }
    my $now = time;
    my $h = b64url(encode_json({ alg => 'RS256', typ => 'JWT',
                                 x5c => [encode_base64($der, '')] }));
    my $p = b64url(encode_json({ iss => $issuer, sub => $who,
                                 aud => $q{service} // '', iat => $now,
                                 nbf => $now - 10, exp => $now + $expires,
                                 jti => "$now-$$", access => \@access,
                                 $pad ? (pad => 'x' x $pad) : () }));
    my $input = "$log.$$.in";
    open my $in, '>', $input or die;
    print $in "$h.$p";
    close $in;
    my $signature = do {
        local $/;
        open my $sig, '-|', 'openssl', 'dgst', '-sha256', '-sign', $key,
                            $input
            or die;
        <$sig>;
    };
    unlink $input;
    my $jwt = "$h.$p." . b64url($signature);
    my $body = encode_json({ token => $jwt, access_token => $jwt,
                             expires_in => $expires + 0,
                             issued_at => '2026-01-01T00:00:00Z' });
    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           . "Content-Length: " . length($body) . "\r\n"
           . "Connection: close\r\n\r\n$body";
});
