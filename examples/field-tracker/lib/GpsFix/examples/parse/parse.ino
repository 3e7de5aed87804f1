// GpsFix example: parse one canned sentence. particle-cli never uploads lib/*/examples/ with the project.
#include "GpsFix.h"

GpsFix gps;

void setup() {
    Serial.begin(9600);
    const char* sentence = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n";
    for (const char* p = sentence; *p; ++p) {
        gps.feed(*p);
    }
    Serial.printlnf("fix=%d lat=%f lon=%f", gps.hasFix(), gps.latitude(), gps.longitude());
}

void loop() {}
