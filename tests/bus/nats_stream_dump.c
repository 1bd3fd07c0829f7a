/*
 * nats_stream_dump.c: prints every message of a JetStream stream, one line
 * each: "<stream seq> <subject> <Nats-Msg-Id>", read back by sequence with
 * the direct get API, so the end-to-end tests see exactly what the stream
 * holds (duplicates included), with no consumer state in between.
 *
 *   nats_stream_dump URL STREAM
 *
 * Exit 0, 2 on usage, 1 when the server or the stream cannot be read.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: nats_stream_dump URL STREAM\n");
		return 2;
	}
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	int rc = 1;
	natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, js, argv[2], NULL, &jerr);
	if (s != NATS_OK) {
		fprintf(stderr, "nats_stream_dump: %s: %s (JetStream error %d)\n", argv[1], natsStatus_GetText(s),
		        (int)jerr);
		goto out;
	}
	printf("# messages %llu first %llu last %llu duplicate_window_ms %lld\n", (unsigned long long)si->State.Msgs,
	       (unsigned long long)si->State.FirstSeq, (unsigned long long)si->State.LastSeq,
	       (long long)(si->Config->Duplicates / 1000000));
	for (uint64_t seq = si->State.FirstSeq; si->State.Msgs > 0 && seq <= si->State.LastSeq; seq++) {
		natsMsg *m = NULL;
		s = js_GetMsg(&m, js, argv[2], seq, NULL, &jerr);
		if (s != NATS_OK) {
			fprintf(stderr, "nats_stream_dump: seq %llu: %s (JetStream error %d)\n",
			        (unsigned long long)seq, natsStatus_GetText(s), (int)jerr);
			goto out;
		}
		const char *id = NULL;
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
			id = "-";
		printf("%llu %s %s\n", (unsigned long long)seq, natsMsg_GetSubject(m), id);
		natsMsg_Destroy(m);
	}
	rc = 0;
out:
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return rc;
}
