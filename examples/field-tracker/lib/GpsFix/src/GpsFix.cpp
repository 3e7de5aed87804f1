#include "GpsFix.h"

#include <stdlib.h>
#include <string.h>

GpsFix::GpsFix() : len_(0), fix_(false), lat_(0.0), lon_(0.0) {
    line_[0] = '\0';
}

void GpsFix::feed(char c) {
    if (c == '\n' || c == '\r') {
        line_[len_] = '\0';
        if (len_ > 0) {
            parseSentence();
        }
        len_ = 0;
        return;
    }
    if (len_ < sizeof(line_) - 1) {
        line_[len_++] = c;
    }
}

double GpsFix::toDegrees(const char* field, char hemisphere) {
    double raw = atof(field);           // ddmm.mmmm
    int degrees = (int)(raw / 100.0);
    double value = degrees + (raw - degrees * 100.0) / 60.0;
    return (hemisphere == 'S' || hemisphere == 'W') ? -value : value;
}

// $GPGGA,time,lat,N,lon,E,quality,...
void GpsFix::parseSentence() {
    if (strncmp(line_, "$GPGGA,", 7) != 0) {
        return;
    }
    const char* fields[8] = {0};
    unsigned int count = 0;
    for (char* p = line_; *p && count < 8; ++p) {
        if (*p == ',') {
            *p = '\0';
            fields[count++] = p + 1;
        }
    }
    if (count < 6 || !fields[1] || !fields[2] || !fields[3] || !fields[4] || !fields[5]) {
        return;
    }
    fix_ = atoi(fields[5]) > 0;
    if (fix_) {
        lat_ = toDegrees(fields[1], fields[2][0]);
        lon_ = toDegrees(fields[3], fields[4][0]);
    }
}
