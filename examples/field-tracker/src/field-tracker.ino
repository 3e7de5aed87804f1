// field-tracker: reports a GPS fix and the battery voltage every few minutes.
//
// Uses only APIs that exist in Device OS 0.5.3 (Serial, Particle.publish/function/variable,
// analogRead, millis), so retargeting this project to an old fielded Electron still compiles.

#include "GpsFix.h"

const unsigned long REPORT_INTERVAL_MS = 5UL * 60UL * 1000UL;
const int LED_PIN = D7;
const int BATTERY_PIN = A0;

GpsFix gps;
unsigned long lastReport = 0;
int reportCount = 0;
double batteryVolts = 0.0;

int forceReport(String arg) {
    lastReport = 0;
    return reportCount;
}

void setup() {
    pinMode(LED_PIN, OUTPUT);
    Serial.begin(9600);
    Serial1.begin(9600);  // GPS module on the hardware serial port
    Particle.variable("reports", reportCount);
    Particle.variable("battery", batteryVolts);
    Particle.function("report", forceReport);
}

void loop() {
    while (Serial1.available() > 0) {
        gps.feed((char)Serial1.read());
    }
    if (lastReport == 0 || millis() - lastReport >= REPORT_INTERVAL_MS) {
        lastReport = millis();
        batteryVolts = analogRead(BATTERY_PIN) * 3.3 * 2.0 / 4095.0;
        char data[96];
        if (gps.hasFix()) {
            snprintf(data, sizeof(data), "{\"lat\":%.5f,\"lon\":%.5f,\"v\":%.2f}",
                     gps.latitude(), gps.longitude(), batteryVolts);
        } else {
            snprintf(data, sizeof(data), "{\"fix\":false,\"v\":%.2f}", batteryVolts);
        }
        digitalWrite(LED_PIN, HIGH);
        Particle.publish("tracker/report", data, 60, PRIVATE);
        digitalWrite(LED_PIN, LOW);
        reportCount++;
        Serial.println(data);
    }
}
