/* platform: owns the generated SimGrid platform XML (see platform.h). */
#include "platform.h"

static void write_routes(FILE *out, uint32_t npeers)
{
    for (uint32_t i = 0; i < npeers; i++)
        fprintf(out,
                "  <route src=\"seeder\" dst=\"p%u\" symmetrical=\"no\"><link_ctn id=\"s_up\"/>"
                "<link_ctn id=\"p%u_down\"/></route>\n"
                "  <route src=\"p%u\" dst=\"seeder\" symmetrical=\"no\"><link_ctn id=\"p%u_up\"/>"
                "<link_ctn id=\"s_down\"/></route>\n",
                i, i, i, i);
}

int platform_write(FILE *out, const scenario *sc, const sim_peer_link *peers, uint32_t npeers, bool full_routes)
{
    fprintf(out, "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                 "<platform version=\"4.1\">\n<zone id=\"world\" routing=\"%s\">\n",
            full_routes ? "Full" : "Cluster");
    fprintf(out, "  <host id=\"seeder\" speed=\"1Gf\">\n"
                 "    <disk id=\"disk\" read_bw=\"%.17gBps\" write_bw=\"%.17gBps\"/>\n  </host>\n",
            sc->disk.bandwidth, sc->disk.bandwidth);
    fprintf(out, "  <link id=\"s_up\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", sc->seeder.uplink,
            sc->seeder.latency);
    fprintf(out, "  <link id=\"s_down\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", sc->seeder.downlink,
            sc->seeder.latency);
    if (!full_routes)
        fprintf(out, "  <host_link id=\"seeder\" up=\"s_up\" down=\"s_down\"/>\n");
    for (uint32_t i = 0; i < npeers; i++) {
        fprintf(out, "  <host id=\"p%u\" speed=\"1Gf\"/>\n", i);
        fprintf(out, "  <link id=\"p%u_up\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", i, peers[i].up,
                peers[i].latency);
        fprintf(out, "  <link id=\"p%u_down\" bandwidth=\"%.17gBps\" latency=\"%.17gs\"/>\n", i, peers[i].down,
                peers[i].latency);
        if (!full_routes)
            fprintf(out, "  <host_link id=\"p%u\" up=\"p%u_up\" down=\"p%u_down\"/>\n", i, i, i);
    }
    if (full_routes)
        write_routes(out, npeers);
    fprintf(out, "</zone>\n</platform>\n");
    return ferror(out) ? -1 : 0;
}
