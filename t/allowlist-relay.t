#!/usr/bin/perl

# An edge in front of Harbor (auth=client) with a block list (issue 13
# review): the token relay drops the scopes the lists refuse, so a client
# gets no upstream token for a repository the mirror does not serve, and
# the refused repository's content stays refused at /v2/.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use RegistryTest;
use Edge;

my $block = test_dir() . '/block.txt';
spew($block, "team-b/**\n");
my $e = Edge::start(lists => "block=$block", login_rate => '6000r/m',
                    login_burst => 200);

my $before = () = file_lines($e->{token_log});
my ($t, $r) = Edge::token($e, 'tess', 'tess-pw',
                          'repository:team-b/secret:pull',
                          'repository:public/app:pull');
is($r->{status}, 200, 'a login asking for a blocked and an allowed '
   . 'repository: 200');
my @all = file_lines($e->{token_log});
my @asked = @all[$before .. $#all];
ok(scalar(grep { /public\/app/ } @asked), '... the allowed scope relayed')
    or diag join "\n", @asked;
is(scalar(grep { /team-b/ } @asked), 0,
   '... the blocked one never reached the token service')
    or diag join "\n", @asked;

$r = Edge::https($e, 'GET', "/v2/team-b/secret/blobs/$e->{private_blob_b}",
                 who => 'tess',
                 headers => ["Authorization: Bearer $t"]);
is($r->{status}, 403, 'the blocked repository: 403');
is(eval { $r->{json}{errors}[0]{code} }, 'DENIED', '... DENIED');

done_testing();
