#pragma once

// Minimal NMEA $GPGGA parser: feed characters, read the last fix.
class GpsFix {
public:
    GpsFix();
    void feed(char c);
    bool hasFix() const { return fix_; }
    double latitude() const { return lat_; }
    double longitude() const { return lon_; }

private:
    void parseSentence();
    static double toDegrees(const char* field, char hemisphere);

    char line_[96];
    unsigned int len_;
    bool fix_;
    double lat_;
    double lon_;
};
