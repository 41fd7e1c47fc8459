#!/usr/bin/perl

# A token server for the tests, as Docker Hub's and Harbor's work: GET
# /token?service=S&scope=repository:NAME:pull answers {"token": JWT, ...}
# signed RS256 with KEY, the certificate CRT in the header's x5c, which the
# registry verifies against its rootcertbundle.  Several scope arguments
# (or one with scopes separated by spaces) are each granted or refused on
# their own, as real token servers do: a refused scope is absent from the
# JWT's "access", and the answer is still 200.
#
# Two modes:
#
# - USERS file ("user:password" lines, the old mode): Basic credentials
#   are checked; a known user gets what each scope asks for, anyone else
#   only pull on names under "public/".  Each request is logged to LOG as
#   "user scope" (scopes joined by spaces; "-" for none).
#
# - --perms FILE (permissions mode): lines "user:password:pattern,...",
#   patterns "team-a/*" (a prefix), "public/*", "*" or an exact name, each
#   granting pull; "push:PATTERN" grants pull and push.  A line
#   "user:password:patterns:SECONDS" gives that user's tokens their own
#   lifetime.  Anonymous requests get pull on "public/*" only (a line
#   "-::patterns" replaces that).  The file is read again on every
#   request, so rewriting it revokes or adds grants at once.  Each request
#   is logged to LOG as "METHOD user scope1 scope2 ..." ("-" for an
#   anonymous user, "-" for no scope).  Besides the GET form:
#     POST /token, application/x-www-form-urlencoded (OAuth2, as docker
#     with a saved refresh token and containerd send it):
#       grant_type=password&username=U&password=P&client_id=C&service=S
#         &scope=...&access_type=offline
#       grant_type=refresh_token&refresh_token=R&client_id=C&service=S
#         &scope=...
#     client_id is required (400 invalid_request without); a refresh token
#     this server did not issue, or whose user is gone from the file, is
#     400 invalid_grant.  access_type=offline (POST) or offline_token=true
#     (GET, with credentials) adds a "refresh_token" to the answer.
#   Refresh tokens are kept in LOG.refresh (children do not share memory).
#
# In both modes wrong credentials get 401 with
# 'WWW-Authenticate: Basic realm="token"'.  EXPIRES (or --expires) is the
# tokens' lifetime in seconds (300).  PAD adds a claim of that many bytes,
# for big tokens.
#
# Usage: tokenserver.pl [--perms FILE] [--expires N]
#                       PORT KEY CRT ISSUER LOG [USERS] [EXPIRES] [PAD]
# It exits by itself after 10 minutes.

use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use Getopt::Long qw(:config require_order);
use JSON::PP;
use MIME::Base64;
use Serve;

my ($perms, $opt_expires);
GetOptions('perms=s' => \$perms, 'expires=i' => \$opt_expires) or die;
my ($port, $key, $crt, $issuer, $log, $users, $expires, $pad) = @ARGV;
$expires ||= $opt_expires || 300;

my %user;
if ($users && -e $users) {
    open my $fh, '<', $users or die;
    while (<$fh>) {
        chomp;
        my ($u, $p) = split /:/, $_, 2;
        $user{$u} = $p;
    }
}

# The permissions file as it is now: user => [password, [patterns], life].
sub read_perms {
    my %p = ('-' => ['', ['public/*'], undef]);
    open my $fh, '<', $perms or return %p;
    while (<$fh>) {
        chomp;
        next if /^\s*(#|$)/;
        my ($u, $pw, $pat, $life) = split /:/, $_, 4;
        # "push:team-a/*" holds a colon: put it back together
        if (defined $life && $life !~ /^\d+$/) {
            ($pat, $life) = ("$pat:$life", undef);
            ($pat, $life) = ($1, $2) if $pat =~ /^(.*):(\d+)$/;
        }
        $p{$u} = [$pw // '', [split /,/, $pat // ''], $life];
    }
    return %p;
}

# The actions $patterns grant on $name, of those asked for.
sub allowed {
    my ($patterns, $name, @asked) = @_;
    my %may;
    for my $pat (@$patterns) {
        my $push = $pat =~ s/^push://;
        my $match = $pat eq '*' ? 1
                  : $pat =~ m{^(.*/)\*$} ? index($name, $1) == 0
                  : $name eq $pat;
        next unless $match;
        $may{pull} = 1;
        $may{push} = 1 if $push;
    }
    return grep { $may{$_} } @asked;
}

sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub form {
    my ($s) = @_;
    my (%q, @scopes);
    for (split /&/, $s // '') {
        my ($k, $v) = split /=/, $_, 2;
        $v //= '';
        $v =~ tr/+/ /;
        $v =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        $q{$k} = $v;
        push @scopes, split / +/, $v if $k eq 'scope' && length $v;
    }
    return (\%q, \@scopes);
}

sub answer {
    my ($c, $status, $body, @headers) = @_;
    print $c "HTTP/1.1 $status\r\n"
           . join('', map { "$_\r\n" } @headers)
           . ($body ne '' ? "Content-Type: application/json\r\n" : '')
           . "Content-Length: " . length($body) . "\r\n"
           . "Connection: close\r\n\r\n$body";
}

sub unauthorized {
    answer($_[0], '401 Unauthorized', '',
           'WWW-Authenticate: Basic realm="token"');
}

sub logline {
    open my $lf, '>>', $log or die;
    print $lf "@_\n";
    close $lf;
}

my $der = do {
    local $/;
    open my $fh, '-|', 'openssl', 'x509', '-in', $crt, '-outform', 'DER'
        or die;
    <$fh>;
};

sub sign {
    my ($claims) = @_;
    my $h = b64url(encode_json({ alg => 'RS256', typ => 'JWT',
                                 x5c => [encode_base64($der, '')] }));
    my $p = b64url(encode_json($claims));
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
    return "$h.$p." . b64url($signature);
}

# The JWT for $who with what each scope grants ($grant->(name, actions)).
sub token_for {
    my ($who, $service, $scopes, $grant, $life) = @_;
    my @access;
    for (@$scopes) {
        next unless /^repository:([^:]+):([a-z,*]+)$/;
        my @granted = $grant->($1, split /,/, $2);
        push @access, { type => 'repository', name => $1,
                        actions => \@granted } if @granted;
    }
    my $now = time;
    return sign({ iss => $issuer, sub => $who, aud => $service // '',
                  iat => $now, nbf => $now - 10, exp => $now + $life,
                  jti => "$now-$$-" . int(rand 1e9), access => \@access,
                  $pad ? (pad => 'x' x $pad) : () });
}

sub refresh_token_for {
    my ($who) = @_;
    my $r = join '', map { sprintf '%02x', rand 256 } 1 .. 24;
    open my $fh, '>>', "$log.refresh" or die;
    print $fh "$r $who\n";
    close $fh;
    return $r;
}

sub refresh_user {
    my ($r) = @_;
    open my $fh, '<', "$log.refresh" or return;
    while (<$fh>) {
        my ($t, $u) = split;
        return $u if defined $t && $t eq $r;
    }
    return;
}

sub old_mode {
    my ($c, $head) = @_;
    my ($query) = $head =~ m{^GET /token\?(\S*) HTTP};
    my ($q, $scopes) = form($query);
    my $who = '-';
    if ($head =~ /^Authorization: Basic (\S+)/mi) {
        my ($u, $p) = split /:/, decode_base64($1), 2;
        if (!defined $user{$u} || $user{$u} ne $p) {
            unauthorized($c);
            return;
        }
        $who = $u;
    }
    logline($who, @$scopes ? @$scopes : '-');
    my $jwt = token_for($who, $q->{service}, $scopes, sub {
        my ($name, @asked) = @_;
        return $who ne '-' ? @asked : $name =~ m{^public/} ? ('pull') : ();
    }, $expires);
    my $body = encode_json({ token => $jwt, access_token => $jwt,
                             expires_in => $expires + 0,
                             issued_at => '2026-01-01T00:00:00Z' });
    answer($c, '200 OK', $body);
}

sub perms_mode {
    my ($c, $head) = @_;
    my %p = read_perms();
    my ($method, $query) = $head =~ m{^(GET|POST) /token(?:\?(\S*))? HTTP};
    if (!$method) {
        answer($c, '404 Not Found', '');
        return;
    }
    my ($q, $scopes, $who, $refresh);
    if ($method eq 'GET') {
        ($q, $scopes) = form($query);
        $who = '-';
        if ($head =~ /^Authorization: Basic (\S+)/mi) {
            my ($u, $pw) = split /:/, decode_base64($1), 2;
            $u //= '';
            if ($u eq '-' || !$p{$u} || $p{$u}[0] ne ($pw // '')) {
                logline($method, "!$u", @$scopes ? @$scopes : '-');
                unauthorized($c);
                return;
            }
            $who = $u;
            $refresh = ($q->{offline_token} // '') eq 'true';
        }
    } else {
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        my ($body) = $head =~ /\r\n\r\n(.*)$/s;
        $body //= '';
        while (length $body < ($len // 0)) {
            sysread($c, $body, 4096, length $body) or last;
        }
        ($q, $scopes) = form($body);
        my $gt = $q->{grant_type} // '';
        if (!length($q->{client_id} // '')) {
            logline($method, '-', @$scopes ? @$scopes : '-');
            answer($c, '400 Bad Request',
                   encode_json({ error => 'invalid_request' }));
            return;
        }
        if ($gt eq 'password') {
            my $u = $q->{username} // '';
            if ($u eq '-' || !$p{$u} || $p{$u}[0] ne ($q->{password} // '')) {
                logline($method, "!$u", @$scopes ? @$scopes : '-');
                unauthorized($c);
                return;
            }
            $who = $u;
            $refresh = ($q->{access_type} // '') eq 'offline';
        } elsif ($gt eq 'refresh_token') {
            my $u = refresh_user($q->{refresh_token} // '');
            if (!defined $u || !$p{$u}) {
                logline($method, '!refresh', @$scopes ? @$scopes : '-');
                answer($c, '400 Bad Request',
                       encode_json({ error => 'invalid_grant' }));
                return;
            }
            $who = $u;
            $refresh = 0;
            $q->{_same_refresh} = $q->{refresh_token};
        } else {
            logline($method, '-', @$scopes ? @$scopes : '-');
            answer($c, '400 Bad Request',
                   encode_json({ error => 'unsupported_grant_type' }));
            return;
        }
    }
    logline($method, $who, @$scopes ? @$scopes : '-');
    my $life = $p{$who}[2] // $expires;
    my $jwt = token_for($who, $q->{service}, $scopes, sub {
        my ($name, @asked) = @_;
        return allowed($p{$who}[1], $name, @asked);
    }, $life);
    my %a = (token => $jwt, access_token => $jwt, expires_in => $life + 0,
             issued_at => '2026-01-01T00:00:00Z');
    $a{refresh_token} = refresh_token_for($who) if $refresh;
    $a{refresh_token} = $q->{_same_refresh} if $q->{_same_refresh};
    $a{scope} = join ' ', @$scopes if $method eq 'POST';
    answer($c, '200 OK', encode_json(\%a));
}

serve($port, sub {
    my ($c) = @_;
    my $head = read_head($c);
    if ($perms) {
        perms_mode($c, $head);
    } else {
        old_mode($c, $head);
    }
});
